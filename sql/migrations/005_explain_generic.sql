-- 005_explain_generic: the generic plan of one of the server's own prepared statements, for
-- GET /api/performance/analysis. PostgreSQL 15 has no EXPLAIN (GENERIC_PLAN): the statement is
-- prepared under plan_cache_mode = force_generic_plan (local to the calling transaction) and
-- explained with NULL parameters, which a generic plan does not look at. Returns NULL when the
-- statement cannot be explained. Only the server calls it, with texts from its own statement
-- registry; it never runs the statement.
CREATE FUNCTION crmd_explain_generic(q text, nparams integer) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
    plan json;
    args text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = 'crmd_explain_generic') THEN
        DEALLOCATE crmd_explain_generic;
    END IF;
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    EXECUTE 'PREPARE crmd_explain_generic AS ' || q;
    SELECT string_agg('NULL', ',') INTO args FROM generate_series(1, nparams);
    EXECUTE 'EXPLAIN (FORMAT JSON) EXECUTE crmd_explain_generic' || coalesce('(' || args || ')', '') INTO plan;
    DEALLOCATE crmd_explain_generic;
    RETURN plan;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END
$$;
