-- What each credential's attestation proved at enrollment (none, self, unverified, verified
-- against the FIDO metadata). Credentials enrolled before this was recorded were never
-- checked against metadata: they are 'unverified'.
ALTER TABLE credentials ADD COLUMN attestation TEXT NOT NULL DEFAULT 'unverified';
-- Whether an approval's credential was hardware-attested then: only such approvals put
-- `hwk` into a decision.
ALTER TABLE approvals ADD COLUMN hardware_attested INTEGER NOT NULL DEFAULT 0;
