/*
 * The subcommands main.c dispatches to. Each parses its own flags and the shared configuration
 * (core/config) from argv (the words after the subcommand) and returns the exit status.
 */
#ifndef CRMD_CMD_CMD_H
#define CRMD_CMD_CMD_H

/* Runs the server until drained (cmd/serve.c). */
int cmd_serve(int argc, char **argv);
/* Runs job executors (--workers N, default one per CPU) with only the admin listener, until
 * drained (cmd/serve.c). */
int cmd_worker(int argc, char **argv);
/* Applies sql/migrations in order (cmd/migrate.c). */
int cmd_migrate(int argc, char **argv);
/* Loads demo data: --scale S (default 1), --keys-out PATH (cmd/seed.c). */
int cmd_seed(int argc, char **argv);
/* keys create --org ID --role admin|member | keys revoke PREFIX (cmd/keys.c). */
int cmd_keys(int argc, char **argv);

#endif
