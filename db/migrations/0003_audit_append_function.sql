-- Appends audit rows to the hash chain in one round trip. The lock on the chain is held
-- until commit; doing the lock, the read of the head and the inserts in one call keeps that
-- window to this call plus the commit, instead of several client round trips.
-- Each entry carries `body`: the canonical JSON the client hashed (db/audit.ts), so the
-- hash is sha256(prev_hash || '\n' || body), exactly what verifyAuditChain recomputes.
CREATE FUNCTION audit_append(entries jsonb) RETURNS void AS $$
DECLARE
  prev text;
  entry jsonb;
  next_hash text;
BEGIN
  PERFORM pg_advisory_xact_lock(7310001);
  SELECT hash INTO prev FROM audit_log ORDER BY seq DESC LIMIT 1;
  prev := coalesce(prev, repeat('0', 64));
  FOR entry IN SELECT value FROM jsonb_array_elements(entries) LOOP
    next_hash := encode(sha256(convert_to(prev || E'\n' || (entry->>'body'), 'UTF8')), 'hex');
    INSERT INTO audit_log (at, actor, action, subject_type, subject_id, before, after, correlation_id, prev_hash, hash)
    VALUES (
      (entry->>'at')::timestamptz, entry->>'actor', entry->>'action', entry->>'subjectType', entry->>'subjectId',
      nullif(entry->'before', 'null'::jsonb), nullif(entry->'after', 'null'::jsonb), entry->>'correlationId', prev, next_hash
    );
    prev := next_hash;
  END LOOP;
END;
$$ LANGUAGE plpgsql;
