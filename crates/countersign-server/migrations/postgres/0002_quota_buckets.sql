-- Request-creation quotas that every instance counts against (the generic cell rate
-- algorithm): per bucket, the moment in microseconds since the epoch at which it would be
-- full again if nothing more were taken. A bucket past that moment is as good as absent.
CREATE TABLE quota_buckets (
    bucket TEXT PRIMARY KEY,
    full_at_us BIGINT NOT NULL
);
