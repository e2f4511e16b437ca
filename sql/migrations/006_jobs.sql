-- 006_jobs: what background jobs keep in PostgreSQL rather than in Redis.
--
-- job_files holds uploads waiting for their import job (text: the CSV or JSON body as sent, in
-- chunks of at most 1 MB cut at character boundaries) and job results too large for Redis (an
-- export's CSV as a series of gzip members, which concatenated are one valid gzip file). Any
-- instance serves them; rows older than 24 h are purged by the maintain_partitions job.
--
-- job_batches records each batch an import has merged, in the transaction that merges it, so a
-- job delivered again after its worker died skips the batches already applied.

CREATE TABLE job_files (
    file_id    text NOT NULL CHECK (length(file_id) BETWEEN 1 AND 64),
    kind       text NOT NULL CHECK (kind IN ('upload', 'result')),
    seq        integer NOT NULL CHECK (seq >= 0),
    org_id     bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    text_data  text,
    bin_data   bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (file_id, kind, seq),
    CHECK (num_nonnulls(text_data, bin_data) = 1)
);
CREATE INDEX job_files_created_idx ON job_files (created_at);

CREATE TABLE job_batches (
    job_id   text NOT NULL,
    batch    integer NOT NULL,
    inserted integer NOT NULL,
    updated  integer NOT NULL,
    done_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, batch)
);
