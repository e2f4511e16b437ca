/*
 * crmd: dispatches to a subcommand (cmd/): serve (the default), worker, migrate, seed, keys, help.
 */
#include "cmd/cmd.h"
#include "core/config.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

#include "build_config.h"

int main(int argc, char **argv)
{
    log_init();
    const char *cmd = "serve";
    int first = 1;
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        first = 2;
    } else if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("crmd %s\n", CRMD_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } cmds[] = {{"serve", cmd_serve},
                {"worker", cmd_worker},
                {"migrate", cmd_migrate},
                {"seed", cmd_seed},
                {"keys", cmd_keys}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            return cmds[i].run(argc - first, argv + first);
    if (strcmp(cmd, "help") == 0) {
        config_usage(stdout);
        return 0;
    }
    fprintf(stderr, "crmd: unknown command '%s' (see crmd --help)\n", cmd);
    return 2;
}
