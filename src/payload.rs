//! Message bodies: the seed's JSON (run id, timestamp, base64 random data) or raw random bytes.

/// How message bodies look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// The seed's JSON document, with `client_id` and `seq` added to `info`.
    Json,
    /// Random bytes only.
    Raw,
}

/// What every body of a run is made of.
#[derive(Debug, Clone)]
pub struct PayloadRecipe {
    /// JSON or raw.
    pub format: PayloadFormat,
    /// Written into `info.test_run_id`.
    pub run_id: String,
    /// Random bytes per message before base64 (N KiB x 1024, or `--payload-bytes`).
    pub random_bytes: usize,
}

/// Builds bodies from a per-thread pool of random bytes made once at start.
#[derive(Debug)]
pub struct PayloadBuilder {
    _private: (),
}

impl PayloadBuilder {
    /// A builder whose pool is seeded from `seed` (one per thread).
    pub fn new(_recipe: &PayloadRecipe, _seed: u64) -> Self {
        todo!("payload")
    }
    /// Replaces `out` with the body of message `seq` of `client_id`, stamped `ts_unix`.
    pub fn build(&mut self, _client_id: &str, _seq: u64, _ts_unix: f64, _out: &mut Vec<u8>) {
        todo!("payload")
    }
}
