-- The groups of the request's requirements each approver belonged to when they approved, as a
-- JSON array of strings: quorum counting follows them, not later changes to the directory.
ALTER TABLE approvals ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
-- Approvals recorded before this: every transaction then named at most one group, and anyone
-- but the requester could approve only as a member of it.
UPDATE approvals
SET groups = (
    SELECT json_array(json_extract(r.transaction_json, '$.requirements.group'))
    FROM requests r
    WHERE r.id = approvals.request_id
)
WHERE role = 'approver'
  AND (
    SELECT json_extract(r.transaction_json, '$.requirements.group')
    FROM requests r
    WHERE r.id = approvals.request_id
  ) IS NOT NULL;
