/*
 * The CRM's job handlers (API.md § Jobs) and what they share: each executor thread's blocking
 * PostgreSQL connection and the job_files store (sql/migrations/006_jobs.sql). Handlers run on
 * worker threads (jobs/jobs.h), never on a reactor, so blocking libpq is right here.
 *
 * Every handler is idempotent: a job delivered again after its worker died must not change
 * anything twice.
 */
#ifndef CRMD_API_JOBS_HANDLERS_H
#define CRMD_API_JOBS_HANDLERS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "jobs/jobs.h"

/* The bytes of one job_files chunk (uploads are cut at character boundaries below this). */
#define JOB_FILE_CHUNK (1024 * 1024)
/* Largest import body (API.md: up to 50 MB). */
#define JOB_IMPORT_MAX ((size_t)50 * 1024 * 1024)

/* Registers every job type's handler with the runtime (before jobs_worker_start). */
void api_jobs_register(void);

/* jobs_worker_config_t.thread_init / thread_fini: the executor thread's state. */
void *api_jobs_thread_init(int index);
void api_jobs_thread_fini(void *state);

/* This executor thread's connection, connected (reconnecting after a loss), with TimeZone UTC
 * and DateStyle ISO; NULL when the database cannot be reached (the handler then returns
 * JOB_RETRY after job_set_error). */
PGconn *job_pg(job_t *job);

/* Runs sql with text parameters; returns the result when its status is ok (PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK, caller PQclears it), else NULL after job_set_error(job, "<what>: <server
 * message>"). */
PGresult *job_pg_exec(job_t *job, const char *what, const char *sql, int nparams, const char *const *values);

/* Invalidates cache tag (as a REST write would: every instance's L1 and L2) after a job changed
 * rows. Blocking; a Redis failure is logged and not retried (the entries expire by TTL). */
void job_invalidate(job_t *job, const char *tag);

/* ---- handlers (one file each) ---- */

int job_import_companies(job_t *job);    /* api/jobs/import.c */
int job_export_deals(job_t *job);        /* api/jobs/export.c */
int job_maintain_partitions(job_t *job); /* api/jobs/partitions.c */
int job_refresh_analytics(job_t *job);   /* api/jobs/handlers.c */
int job_warm_cache(job_t *job);          /* api/jobs/handlers.c */
int job_noop(job_t *job);                /* api/jobs/handlers.c: the diagnostic job */

#endif
