//! Request-creation quotas in PostgreSQL, so that every instance counts against the same
//! ones: the generic cell rate algorithm, one row per bucket holding when it would be full
//! again, updated in one statement under the row's lock and on the database's clock (the
//! instances' clocks may differ).

use super::{SharedQuotas, StoreError};
use sqlx::PgPool;
use std::time::Duration;

/// [`SharedQuotas`] in the `quota_buckets` table.
pub(super) struct PgQuotas {
    pub(super) pool: PgPool,
}

/// Microseconds between two uses at `per_minute` (at least one: rates above a million a
/// minute count as that), and how far ahead of now a bucket may be booked (a burst of
/// `per_minute`, computed without the interval's rounding so that it never shrinks to none).
fn spacing(per_minute: u32) -> (i64, i64) {
    let per_minute = i64::from(per_minute.max(1));
    let interval = (60_000_000 / per_minute).max(1);
    (interval, 60_000_000 * (per_minute - 1) / per_minute)
}

#[async_trait::async_trait]
impl SharedQuotas for PgQuotas {
    async fn take(
        &self,
        bucket: &str,
        per_minute: u32,
    ) -> Result<Result<(), Duration>, StoreError> {
        let (interval, tolerance) = spacing(per_minute);
        // EXCLUDED.full_at_us is now + interval.
        let taken = sqlx::query(
            "INSERT INTO quota_buckets (bucket, full_at_us) \
             VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint + $2) \
             ON CONFLICT (bucket) DO UPDATE \
             SET full_at_us = GREATEST(quota_buckets.full_at_us + $2, EXCLUDED.full_at_us) \
             WHERE quota_buckets.full_at_us - (EXCLUDED.full_at_us - $2) <= $3",
        )
        .bind(bucket)
        .bind(interval)
        .bind(tolerance)
        .execute(&self.pool)
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(Ok(()));
        }
        let wait: Option<i64> = sqlx::query_scalar(
            "SELECT full_at_us - (extract(epoch FROM clock_timestamp()) * 1000000)::bigint - $2 \
             FROM quota_buckets WHERE bucket = $1",
        )
        .bind(bucket)
        .bind(tolerance)
        .fetch_optional(&self.pool)
        .await?;
        let wait = u64::try_from(wait.unwrap_or(0)).unwrap_or(0);
        Ok(Err(Duration::from_micros(wait)))
    }

    async fn forget_idle(&self) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM quota_buckets \
             WHERE full_at_us < (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::spacing;

    #[test]
    fn a_quota_allows_its_burst_and_then_one_per_interval() {
        assert_eq!(spacing(60), (1_000_000, 59_000_000));
        assert_eq!(spacing(1), (60_000_000, 0));
        // Zero is refused by config validation; here it counts as one.
        assert_eq!(spacing(0), spacing(1));
        // A rate too high to count in microseconds still allows a minute's burst.
        assert_eq!(spacing(100_000_000), (1, 59_999_999));
        assert_eq!(spacing(7), (8_571_428, 51_428_571));
    }
}
