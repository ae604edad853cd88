//! Password hashing: Django's `django.contrib.auth.hashers`, with argon2id.
//!
//! Passwords are stored as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$…`),
//! which carry their own parameters and salt. Hashing is slow on purpose, so
//! every call here runs on the hashing threads ([`HashingPool`]), never on
//! an async worker.

use std::{
    cell::{Cell, RefCell},
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
};

use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{
        self,
        phc::{Output, ParamsString, Salt},
    },
};
use thiserror::Error;

use crate::{db::count_queries, errors::AppError, metrics::RequestMetrics};

/// A password could not be hashed.
#[derive(Debug, Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl HashError {
    fn new(err: impl fmt::Display) -> Self {
        Self(err.to_string())
    }
}

/// Hashes and checks passwords with argon2id.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, made at start-up with the current
    /// parameters. Checking a password against it costs what checking a real
    /// user's password costs, so an unknown username takes as long to reject
    /// as a wrong password.
    dummy_hash: String,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Default for PasswordHasher {
    /// argon2id with the OWASP-recommended parameters (19 MiB, 2 passes).
    fn default() -> Self {
        Self::new(Params::default()).expect("the default argon2 parameters are valid")
    }
}

impl PasswordHasher {
    /// A hasher for `params`. Hashes the dummy password once, so it is slow.
    pub fn new(params: Params) -> Result<Self, HashError> {
        let mut hasher = Self {
            params,
            dummy_hash: String::new(),
        };
        let mut random = [0u8; 32];
        rand::fill(&mut random);
        hasher.dummy_hash = hasher.hash(&hex::encode(random))?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes `password` with a fresh salt into a PHC string.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        let salt = password_hash::try_generate_salt().map_err(HashError::new)?;
        let mut output = [0u8; Output::MAX_LENGTH];
        let length = self
            .params
            .output_len()
            .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = output
            .get_mut(..length)
            .ok_or_else(|| HashError::new(password_hash::Error::OutputSize))?;
        argon2_into(&self.argon2(), password.as_bytes(), &salt, output).map_err(HashError::new)?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(HashError::new)?,
            salt: Some(Salt::new(&salt).map_err(HashError::new)?),
            hash: Some(Output::new(output).map_err(HashError::new)?),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` matches the PHC string `encoded`. A malformed
    /// stored hash never matches.
    pub fn verify(&self, password: &str, encoded: &str) -> bool {
        let Ok(hash) = PasswordHash::new(encoded) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return false;
        };
        // The hash's own algorithm and parameters, whatever `self.params` says.
        let (Ok(algorithm), Ok(version), Ok(params)) = (
            Algorithm::try_from(hash.algorithm.as_str()),
            hash.version
                .map_or(Ok(Version::default()), Version::try_from),
            Params::try_from(&hash),
        ) else {
            return false;
        };
        let mut output = [0u8; Output::MAX_LENGTH];
        let output = &mut output[..expected.len()];
        let argon2 = Argon2::new(algorithm, version, params);
        // `Output`'s comparison takes the same time wherever the two differ.
        argon2_into(&argon2, password.as_bytes(), salt, output).is_ok()
            && Output::new(output).is_ok_and(|computed| computed == *expected)
    }

    /// Whether a stored hash was made with other settings than the current
    /// ones (another algorithm or version, other costs), and should be
    /// replaced at the next successful login.
    pub fn needs_rehash(&self, encoded: &str) -> bool {
        let Ok(hash) = PasswordHash::new(encoded) else {
            return true;
        };
        let Ok(params) = Params::try_from(&hash) else {
            return true;
        };
        hash.algorithm != ARGON2ID_IDENT
            || hash.version != Some(Version::V0x13.into())
            || params.m_cost() != self.params.m_cost()
            || params.t_cost() != self.params.t_cost()
            || params.p_cost() != self.params.p_cost()
    }

    /// Spends the time of one verification and returns `false`: for
    /// usernames that do not exist.
    pub fn verify_dummy(&self, password: &str) -> bool {
        let _ = self.verify(password, &self.dummy_hash);
        false
    }
}

thread_local! {
    /// argon2's working memory (19 MiB at the default costs), kept by a
    /// hashing thread from one hash to the next while more password work
    /// waits, and given back once none does ([`HashingPool`]).
    static WORKING_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
    /// Whether this thread keeps [`WORKING_MEMORY`] after a hash: only the
    /// hashing threads do, and they give it back themselves.
    static KEEPS_WORKING_MEMORY: Cell<bool> = const { Cell::new(false) };
}

/// argon2 of `password` and `salt` into `output`, in this thread's working
/// memory.
///
/// argon2's own `hash_password` asks for fresh zeroed memory for every hash,
/// which the system maps and zeroes (`porter::allocator`): a millisecond or
/// more of kernel time a hash, more when the kernel has no huge pages to
/// give. Measured on 2 cores, `POST /login` served 71 to 75 logins a second
/// so, and 83 to 89 with one block reused through the burst. argon2 writes
/// every block before it reads it, so what the last hash left there does not
/// matter. The first hash of a burst fills its new block once more than
/// argon2's own would: a lone login pays that, a burst does not.
fn argon2_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    output: &mut [u8],
) -> argon2::Result<()> {
    WORKING_MEMORY.with_borrow_mut(|memory| {
        let blocks = argon2.params().block_count();
        if memory.len() < blocks {
            // The old block goes before the new one comes: one at a time.
            // A stored hash can ask for more than there is: refused, not
            // an abort.
            *memory = Vec::new();
            memory
                .try_reserve_exact(blocks)
                .map_err(|_| argon2::Error::OutOfMemory)?;
            memory.resize(blocks, Block::default());
        }
        let hashed =
            argon2.hash_password_into_with_memory(password, salt, output, &mut memory[..blocks]);
        if !KEEPS_WORKING_MEMORY.get() {
            *memory = Vec::new();
        }
        hashed
    })
}

type Job = Box<dyn FnOnce() + Send>;

/// Password work that did not run.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HashingPoolError {
    /// The queue is full: the server is busy, try again shortly.
    #[error("too much password work is waiting; try again shortly")]
    Busy,
    /// The threads are gone (the server is shutting down).
    #[error("the password work was cancelled")]
    Cancelled,
}

impl From<HashingPoolError> for AppError {
    fn from(err: HashingPoolError) -> Self {
        match err {
            HashingPoolError::Busy => Self::Busy { retry_after: 1 },
            HashingPoolError::Cancelled => Self::Unexpected(err.into()),
        }
    }
}

/// How many jobs may wait per hashing thread before more are refused. At
/// OWASP's argon2 costs a hash takes tens of milliseconds, so a full queue
/// is well under a second of waiting.
pub const QUEUE_PER_THREAD: usize = 16;

/// A few threads that do nothing but password work (login, sign-up,
/// password change), one fewer than there are cores.
///
/// Argon2 is slow on purpose and takes 19 MiB a go. On threads of their own,
/// a burst of logins queues here while a core stays free for every other
/// request, and no more hashes run at once than there are threads, so no
/// more than that many 19 MiB blocks are resident. A thread keeps its block
/// for the next hash while more work waits and gives it back once none does
/// (see `porter::allocator`). The queue is
/// bounded: past it, work is refused at once ([`HashingPoolError::Busy`],
/// a `503` with `Retry-After`) rather than left to wait without end.
pub struct HashingPool {
    jobs: mpsc::Sender<Job>,
    /// Jobs sent and not yet started.
    waiting: Arc<AtomicUsize>,
    capacity: usize,
}

impl fmt::Debug for HashingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashingPool").finish_non_exhaustive()
    }
}

/// How far below the rest of the server the hashing threads run, in nice
/// steps: page requests come first.
///
/// A hashing thread keeps a core busy for as long as logins queue. At the
/// workers' priority, a page request that wakes while a hash runs may wait
/// out the hash's time slice, and a signed-in page's slowest responses are
/// then set by the rate of logins, which a credential-stuffing run
/// controls. Ten steps lower, the scheduler hands a woken page request the
/// core sooner and gives hashing about a tenth of the share of each busy
/// thread. Measured with `bench/run.sh` (32 clients logging in while 32
/// load `/profile`, db engine, SQLite, autogroup off, 2 cores): the page's
/// p99 is 2.0× its calm p99 at ten steps and 3.2× at five, and logins
/// during that page load fall from 44 to about 36 a second. With no page
/// load, hashing has the core to itself.
///
/// A nice value ranks threads only within their scheduling group. Where
/// the kernel's autogroup scheduling applies (it is on by default, for
/// processes outside a CPU cgroup), every session is a group, and each
/// PostgreSQL backend starts its own: there the hashing threads yield to
/// Porter's own threads but not to a database on the same machine, whose
/// backends then wait to run. Measured so, PostgreSQL's storm p99 was
/// 6.2× its calm p99 at ten steps and 3.0× at five; with autogroup off,
/// 2.2× and 2.4×. See "PostgreSQL on the same machine" in the README.
///
/// Whatever else a job does runs at this priority too: the backend's
/// lookup of the user and, after a cost change, the write of the new hash.
/// A lock or pooled connection held meanwhile is held a little longer
/// while page work runs: keep such work in a job short.
pub const HASHING_NICE: i32 = 10;

/// Lowers the calling thread's priority by [`HASHING_NICE`] (Linux keeps a
/// nice value per thread). Lowering one's own priority needs no privilege;
/// where it fails, hashing runs at the server's priority.
fn yield_to_page_requests() {
    #[cfg(target_os = "linux")]
    {
        use rustix::{process, thread};
        let this_thread = Some(thread::gettid());
        let lowered = process::getpriority_process(this_thread).and_then(|nice| {
            process::setpriority_process(this_thread, (nice + HASHING_NICE).min(19))
        });
        if let Err(err) = lowered {
            tracing::warn!(%err, "could not lower the hashing threads' priority");
        }
    }
}

impl HashingPool {
    /// One thread per core but one, and at least one, with a queue of
    /// `queue` jobs (by default [`QUEUE_PER_THREAD`] per thread).
    pub fn for_this_machine(queue: Option<usize>) -> Self {
        let cores = thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let threads = cores.saturating_sub(1).max(1);
        Self::new(threads, queue.unwrap_or(threads * QUEUE_PER_THREAD))
    }

    /// A pool of `threads` threads, refusing work when `capacity` jobs are
    /// waiting. The threads end when the pool is dropped.
    pub fn new(threads: usize, capacity: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = Arc::clone(&queue);
            thread::Builder::new()
                .name(format!("porter-hashing-{n}"))
                .spawn(move || {
                    yield_to_page_requests();
                    KEEPS_WORKING_MEMORY.set(true);
                    loop {
                        // The lock is held only while taking or waiting for
                        // the next job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.try_recv().or_else(|_| {
                                // No job waits: argon2's memory goes back
                                // to the system before this thread waits.
                                WORKING_MEMORY.with_borrow_mut(|memory| *memory = Vec::new());
                                queue.recv()
                            }),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        job();
                    }
                })
                .expect("start-up can start the hashing threads");
        }
        Self {
            jobs,
            waiting: Arc::new(AtomicUsize::new(0)),
            capacity,
        }
    }

    /// Runs `work` on a hashing thread, inside the caller's tracing span, and
    /// counts its queries (not the hashing) for the request's metrics.
    ///
    /// Refused at once with [`HashingPoolError::Busy`] when the queue is full.
    pub async fn run<T, F>(&self, work: F) -> Result<T, HashingPoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // Count this job in, unless that would overfill the queue.
        let admitted = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < self.capacity).then_some(waiting + 1)
            });
        if admitted.is_err() {
            return Err(HashingPoolError::Busy);
        }
        let (done, result) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let record_sql = RequestMetrics::records_sql();
        let waiting = Arc::clone(&self.waiting);
        let job: Job = Box::new(move || {
            waiting.fetch_sub(1, Ordering::AcqRel);
            let _entered = span.enter();
            let _ = done.send(count_queries(record_sql, work));
        });
        if self.jobs.send(job).is_err() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(HashingPoolError::Cancelled);
        }
        let (value, queries) = result.await.map_err(|_| HashingPoolError::Cancelled)?;
        RequestMetrics::record_queries(queries);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(Params::new(1024, 1, 1, None).expect("valid")).expect("hasher")
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hasher = fast();
        let hash = hasher.hash("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"));
        assert!(hasher.verify("correct horse", &hash));
        assert!(!hasher.verify("Correct horse", &hash));
    }

    #[test]
    fn hashes_made_with_other_costs_need_rehashing() {
        let old =
            PasswordHasher::new(Params::new(512, 1, 1, None).expect("valid")).expect("hasher");
        let hash = old.hash("secret words").expect("hash");
        assert!(!old.needs_rehash(&hash));
        assert!(fast().needs_rehash(&hash));
        assert!(fast().needs_rehash("not a hash"));
    }

    #[test]
    fn hashes_are_written_as_argon2_writes_them() {
        use argon2::PasswordHasher as _;

        let hasher = fast();
        let ours = hasher.hash("correct horse").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        let salt = parsed.salt.expect("a salt");
        let theirs = hasher
            .argon2()
            .hash_password_with_salt(b"correct horse", &salt)
            .expect("hash")
            .to_string();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn hashes_are_checked_as_argon2_checks_them() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};

        let ours = fast().hash("correct horse").expect("hash");
        // Made by argon2 itself with another algorithm, version and costs,
        // and with the optional parameters.
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            argon2::ParamsBuilder::new()
                .m_cost(256)
                .t_cost(3)
                .p_cost(2)
                .output_len(24)
                .keyid(argon2::KeyId::new(b"key1").expect("valid"))
                .data(argon2::AssociatedData::new(b"site").expect("valid"))
                .build()
                .expect("valid"),
        );
        let theirs = other
            .hash_password(b"correct horse")
            .expect("hash")
            .to_string();
        let (_, salt_and_hash) = ours.rsplit_once("$m=").expect("params");
        let without_hash = ours.rsplit_once('$').expect("a hash").0.to_owned();
        let stored = [
            ours.clone(),
            theirs.clone(),
            ours.replace("$argon2id$", "$argon2d$"),
            ours.replace("$argon2id$", "$scrypt$"),
            ours.replace("$v=19$", "$v=16$"),
            ours.replace("$v=19$", "$v=18$"),
            ours.replace("$v=19$", ""),
            format!("$argon2id$v=19$x=1,m={salt_and_hash}"),
            without_hash,
            format!("{ours}A"),
            theirs.replace("keyid=", "keyid=Z"),
            String::new(),
        ];
        assert!(fast().verify("correct horse", &theirs));
        for encoded in &stored {
            for password in ["correct horse", "Correct horse"] {
                let stock = PasswordHash::new(encoded).is_ok_and(|hash| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &hash)
                        .is_ok()
                });
                assert_eq!(
                    fast().verify(password, encoded),
                    stock,
                    "{password:?} against {encoded:?}"
                );
            }
        }
    }

    /// Reads the hashing thread's working memory, in blocks.
    fn working_memory() -> usize {
        WORKING_MEMORY.with_borrow(Vec::len)
    }

    #[tokio::test]
    async fn a_burst_of_hashes_shares_one_working_memory_and_gives_it_back() {
        let pool = HashingPool::new(1, 4);
        let hasher = fast();
        let first = {
            let hasher = hasher.clone();
            pool.run(move || {
                let hash = hasher.hash("first").expect("hash");
                // Long enough for the next job to be queued meanwhile.
                thread::sleep(std::time::Duration::from_millis(200));
                hash
            })
        };
        let (first, queued) = tokio::join!(first, pool.run(working_memory));
        assert!(hasher.verify("first", &first.expect("the job runs")));
        assert_eq!(
            queued.expect("the job runs"),
            1024,
            "the queued job found no memory"
        );

        // Once the thread has seen no work waiting after its last job (it
        // looks just after answering), the next job finds nothing kept.
        let mut kept = usize::MAX;
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            kept = pool.run(working_memory).await.expect("the job runs");
            if kept == 0 {
                break;
            }
        }
        assert_eq!(kept, 0, "the memory was kept with no work waiting");
        assert_eq!(working_memory(), 0, "a thread of the caller's kept memory");
    }

    #[test]
    fn a_malformed_hash_never_matches() {
        assert!(!fast().verify("", "not a hash"));
    }

    #[test]
    fn the_dummy_never_matches() {
        assert!(!fast().verify_dummy("anything"));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn password_work_runs_at_a_lower_priority_than_the_caller() {
        let this_thread = || {
            rustix::process::getpriority_process(Some(rustix::thread::gettid()))
                .expect("a thread can read its own nice value")
        };
        let caller = this_thread();
        let hashing = HashingPool::new(1, 1)
            .run(this_thread)
            .await
            .expect("the job runs");
        assert_eq!(hashing, (caller + HASHING_NICE).min(19));
    }
}
