//! The statements that move a handler's checkpoint, in the SQL that PostgreSQL and SQLite both accept
//! (`$n` placeholders, `INSERT ... ON CONFLICT ... DO UPDATE`, `RETURNING`). The `checkpoints` table is
//! created by each backend's migrations; `updated_at` is bound by the backend in its own column type.
//! Every statement that writes a position is fenced: a checkpoint never moves backwards.

/// Saves `$2` as handler `$1`'s checkpoint at time `$3`, only forward: a position at or before the
/// stored one leaves the row alone. The fence of `EventStore::save_checkpoint` (at-least-once handlers).
pub const SAVE_CHECKPOINT: &str = r"
INSERT INTO checkpoints (handler, position, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (handler) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at
WHERE checkpoints.position < EXCLUDED.position";

/// Records the page's last position (`$2`) as handler `$1`'s checkpoint at time `$4`, unless the stored
/// checkpoint is already at or past the page's first position (`$3`).
///
/// This is the fence that makes a page exactly-once even when two instances both believe they hold the
/// lease: the second one to commit finds the checkpoint moved past its page, gets no row back, and rolls
/// its page back. A row comes back only when the checkpoint was written.
pub(crate) const ADVANCE_CHECKPOINT: &str = r"
INSERT INTO checkpoints (handler, position, updated_at) VALUES ($1, $2, $4)
ON CONFLICT (handler) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at
WHERE checkpoints.position < $3
RETURNING position";

/// Sets handler `$1`'s checkpoint back to the start of the log at time `$2` (a rebuild).
pub(crate) const RESET_CHECKPOINT: &str = r"
INSERT INTO checkpoints (handler, position, updated_at) VALUES ($1, 0, $2)
ON CONFLICT (handler) DO UPDATE SET position = 0, updated_at = EXCLUDED.updated_at";
