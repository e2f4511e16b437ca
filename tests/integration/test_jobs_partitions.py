"""maintain_partitions over 36 months of activities: partitions made ahead, rows moved out of
the default partition, months past the retention detached, archived as gzip CSV, read back and
only then dropped. Rows before = rows after + rows archived, and the archives hold exactly the
rows that left. A second run changes nothing; a month left detached by a crash is finished; a
month retired twice keeps both archives."""
import csv
import glob
import gzip
import io
import os
import shutil
import tempfile

from lib import DB, REDIS, Server, Skip, psql, seed_keys
from test_jobs import env, key, reset_jobs, wait_job, enqueue

keys = None
archive = None


def setup_module():
    global keys, archive
    if not DB or not REDIS:
        raise Skip("DATABASE_URL and REDIS_URL needed (tests/run starts dev/stack)")
    import test_jobs
    keys = seed_keys("jobs_partitions")
    test_jobs.keys = keys
    archive = tempfile.mkdtemp(prefix="crmd-archive-")


def teardown_module():
    if archive:
        shutil.rmtree(archive, ignore_errors=True)
    # the migration's range again, for the modules after this one
    psql("SELECT crmd_ensure_activity_partitions(((now() AT TIME ZONE 'UTC') - interval '24 months')::date,"
         " ((now() AT TIME ZONE 'UTC') + interval '3 months')::date)")


def run_job(**extra):
    with Server(env=env(WORKERS=1, ARCHIVE_DIR=archive, PARTITION_RETENTION_MONTHS=12, **extra)) as s:
        jid = enqueue(s, key(1), "maintain_partitions")
        j = wait_job(s, key(1), jid, ["succeeded", "failed", "dead"], timeout=120)
        assert j["status"] == "succeeded", j
        return j["result"]


def archived_ids():
    ids = []
    for path in sorted(glob.glob(os.path.join(archive, "activities_*.csv.gz"))):
        rows = list(csv.DictReader(io.StringIO(gzip.decompress(open(path, "rb").read()).decode())))
        ids += [int(r["id"]) for r in rows]
    return ids


def partitions():
    return psql("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'activities'::regclass ORDER BY 1").split()


def test_thirty_six_months_archived_and_nothing_lost():
    reset_jobs()
    # 36 months of extra rows, one every day, with bodies holding commas, quotes and newlines;
    # months older than the migration's 24 land in the default partition
    psql("INSERT INTO activities (org_id, type, subject, body, occurred_at)"
         " SELECT 1, 'note', 'archive test ' || g, 'line one, \"two\"' || chr(10) || 'three',"
         " now() - make_interval(days => g) FROM generate_series(1, 1100) g")
    before_ids = set(int(x) for x in psql("SELECT id FROM activities").split())
    in_default = int(psql("SELECT count(*) FROM activities_default"))
    assert in_default > 0
    res = run_job()
    assert res["moved"] == in_default and int(psql("SELECT count(*) FROM activities_default")) == 0, res
    assert res["dropped"] >= 20, res
    after_ids = set(int(x) for x in psql("SELECT id FROM activities").split())
    gone = before_ids - after_ids
    arch = archived_ids()
    assert len(arch) == len(set(arch)) == sum(a["rows"] for a in res["archived"]), res
    assert set(arch) == gone, (len(arch), len(gone))
    assert len(before_ids) == len(after_ids) + len(arch)
    # no partition older than the retention is left; the months ahead exist
    oldest = psql("SELECT min(to_date(substr(c.relname, 12), 'YYYY_MM')) FROM pg_inherits i"
                  " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'activities'::regclass"
                  " AND c.relname <> 'activities_default'")
    assert psql("SELECT '%s'::date >= (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '12 months')::date"
                % oldest) == "t", oldest
    ahead = psql("SELECT to_char((now() AT TIME ZONE 'UTC') + interval '3 months', '\"activities_\"YYYY_MM')")
    assert ahead in partitions()
    # an archive's body kept its comma, quotes and newline
    one = gzip.decompress(open(sorted(glob.glob(os.path.join(archive, "*.csv.gz")))[0], "rb").read()).decode()
    assert 'line one, ""two""\nthree' in one

    # a second run changes nothing
    res2 = run_job()
    assert res2["dropped"] == 0 and res2["moved"] == 0 and res2["created"] == 0, res2
    assert set(int(x) for x in psql("SELECT id FROM activities").split()) == after_ids


def test_a_month_left_detached_by_a_crash_is_finished_and_archives_never_overwrite():
    reset_jobs()
    old = psql("SELECT to_char(now() - interval '20 months', 'YYYY-MM-01')")
    table = "activities_" + old[:7].replace("-", "_")
    # rows arrive for a retired month: its partition is made again, then "the job crashed" after
    # detaching it
    psql("INSERT INTO activities (org_id, type, subject, occurred_at)"
         " SELECT 1, 'call', 'late ' || g, '%s'::timestamptz + make_interval(hours => g) FROM generate_series(1, 50) g"
         % old)
    psql("SELECT crmd_ensure_activity_partitions('%s', '%s')" % (old, old))
    psql("ALTER TABLE activities DETACH PARTITION %s" % table)
    before = set(archived_ids())
    n_files = len(glob.glob(os.path.join(archive, table + ".*.csv.gz")))
    res = run_job()
    assert res["dropped"] == 1 and res["archived"][0]["partition"] == table and res["archived"][0]["rows"] == 50, res
    assert psql("SELECT to_regclass('%s')" % table) == ""
    assert len(glob.glob(os.path.join(archive, table + ".*.csv.gz"))) == n_files + 1  # the first archive kept
    assert len(set(archived_ids()) - before) == 50
