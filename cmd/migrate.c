/* `crmd migrate`: applies sql/migrations through the runner in db/migrate.c. */
#include "cmd/cli.h"
#include "cmd/cmd.h"
#include "core/config.h"
#include "db/migrate.h"

#include <stdio.h>

int cmd_migrate(int argc, char **argv)
{
    config_parse(&g_config, argc, argv, "migrate");
    char dir[4096];
    if (db_migrations_dir(dir, sizeof(dir)) != 0) {
        fprintf(stderr, "crmd: cannot find sql/migrations (set CRMD_MIGRATIONS_DIR)\n");
        return 1;
    }
    return db_migrate_run(cli_database_url(), dir);
}
