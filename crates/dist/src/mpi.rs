//! [`Mpi`]: the processes `mpirun` started (`MPI_COMM_WORLD`), through the `mpi` crate
//! (rsmpi) over the system's MPI library (Open MPI on Debian).
//!
//! Every collective is started non-blocking and waited for with `MPI_Test`, so that one
//! the other ranks never join (a rank died or hangs) is an error after a timeout instead
//! of a hang. MPI cannot take back a buffer it was given, so after a timeout the buffers
//! of that operation are left to it (leaked), the communicator refuses further work,
//! and the process should end: dropping it then skips `MPI_Finalize`, which would wait
//! for the missing rank. The library's own errors come back as codes
//! (`MPI_ERRORS_RETURN`) and are reported with its message.

use crate::comm::{check_counts, check_gather_counts, Communicator, Element};
use crate::error::{DistError, Result};
use mpi::environment::{Threading, Universe};
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::Communicator as _;
use std::cell::Cell;
use std::ffi::c_void;
use std::os::raw::c_int;
use std::time::{Duration, Instant};

/// `MPI_COMM_WORLD` (see the [module docs](self)).
pub struct Mpi {
    /// `None` once given up on (after a timeout or a library error).
    universe: Option<Universe>,
    comm: ffi::MPI_Comm,
    rank: usize,
    size: usize,
    timeout: Duration,
    /// Why the communicator refuses work, once it does.
    broken: Cell<Option<String>>,
}

impl Mpi {
    /// Initializes MPI (only the calling thread will call it: `MPI_THREAD_FUNNELED`) and
    /// returns the world communicator, with collectives that give up after 20 seconds
    /// (see [`Mpi::timeout`]). An error if MPI was already initialized.
    pub fn init() -> Result<Mpi> {
        let (universe, _) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| DistError::comm("init", "MPI is already initialized in this process"))?;
        let world = universe.world();
        let comm = world.as_raw();
        // SAFETY: `comm` is the live world communicator and the handler a predefined one.
        let code = unsafe { ffi::MPI_Comm_set_errhandler(comm, ffi::RSMPI_ERRORS_RETURN) };
        let mpi = Mpi {
            rank: world.rank() as usize,
            size: world.size() as usize,
            universe: Some(universe),
            comm,
            timeout: Duration::from_secs(20),
            broken: Cell::new(None),
        };
        mpi.check("init", code)?;
        Ok(mpi)
    }

    /// Gives up on a collective that the other ranks have not joined within `timeout`.
    /// A rank waits in a collective for the slowest rank's step, so the timeout must
    /// exceed the longest step (and the start-up: loading data, building the network).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The name of this process's host (`MPI_Get_processor_name`).
    pub fn processor_name(&self) -> String {
        mpi::environment::processor_name().unwrap_or_default()
    }

    /// The MPI library's description (`MPI_Get_library_version`).
    pub fn library_version(&self) -> String {
        mpi::environment::library_version().unwrap_or_default()
    }

    /// An error unless the communicator still works.
    fn ready(&self, op: &'static str) -> Result<()> {
        match self.broken.take() {
            None => Ok(()),
            Some(why) => {
                self.broken.set(Some(why.clone()));
                Err(DistError::comm(
                    op,
                    format!("the communicator gave up earlier: {why}"),
                ))
            }
        }
    }

    /// `code` as a result, with the library's message.
    fn check(&self, op: &'static str, code: c_int) -> Result<()> {
        if code == 0 {
            return Ok(());
        }
        let mut text = vec![0u8; 1024];
        let mut len: c_int = 0;
        // SAFETY: the buffer is larger than MPI_MAX_ERROR_STRING (256 in Open MPI).
        unsafe { ffi::MPI_Error_string(code, text.as_mut_ptr().cast(), &mut len) };
        text.truncate(len.clamp(0, 1024) as usize);
        let message = format!(
            "rank {}: the MPI library reported error {code}: {}",
            self.rank,
            String::from_utf8_lossy(&text)
        );
        self.broken.set(Some(message.clone()));
        Err(DistError::comm(op, message))
    }

    /// Waits for `request` to complete, polling; `Err` after the timeout or an error, in
    /// which case the caller must leave the operation's buffers to MPI.
    fn wait(&self, op: &'static str, mut request: ffi::MPI_Request) -> Result<()> {
        let start = Instant::now();
        let mut polls: u64 = 0;
        loop {
            let mut flag: c_int = 0;
            // SAFETY: `request` was returned by a non-blocking call and not completed yet.
            let code = unsafe { ffi::MPI_Test(&mut request, &mut flag, ffi::RSMPI_STATUS_IGNORE) };
            self.check(op, code)?;
            if flag != 0 {
                return Ok(());
            }
            polls += 1;
            if polls.is_multiple_of(256) {
                let waited = start.elapsed();
                if waited > self.timeout {
                    let message = format!(
                        "rank {} waited {:.0} s for the other ranks to join; one of them died, \
                         hangs, or takes longer than the timeout for a step",
                        self.rank,
                        waited.as_secs_f64()
                    );
                    self.broken.set(Some(message.clone()));
                    return Err(DistError::comm(op, message));
                }
                // after a short spin, let a rank that shares this core run
                if waited > Duration::from_millis(1) {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Starts an operation with `start` (which returns the library's code and the
    /// request) and waits for it; on failure `buffers` are leaked, as MPI may still
    /// write into them.
    fn run<K>(
        &self,
        op: &'static str,
        buffers: K,
        start: impl FnOnce(&mut K, &mut ffi::MPI_Request) -> c_int,
    ) -> Result<K> {
        self.ready(op)?;
        let mut buffers = buffers;
        // SAFETY: a plain handle, written by `start`.
        let mut request: ffi::MPI_Request = unsafe { ffi::RSMPI_REQUEST_NULL };
        let code = start(&mut buffers, &mut request);
        // not started: nothing refers to the buffers
        self.check(op, code)?;
        match self.wait(op, request) {
            Ok(()) => Ok(buffers),
            Err(e) => {
                std::mem::forget(buffers);
                Err(e)
            }
        }
    }
}

/// `counts` as MPI's `int` counts and their displacements.
fn ints(op: &'static str, counts: &[usize]) -> Result<(Vec<c_int>, Vec<c_int>)> {
    let too_many = || DistError::invalid(op, format!("counts {counts:?} exceed MPI's int range"));
    let mut displs = Vec::with_capacity(counts.len());
    let mut at: c_int = 0;
    let mut out = Vec::with_capacity(counts.len());
    for &c in counts {
        let c = c_int::try_from(c).map_err(|_| too_many())?;
        displs.push(at);
        out.push(c);
        at = at.checked_add(c).ok_or_else(too_many)?;
    }
    Ok((out, displs))
}

fn count(op: &'static str, n: usize) -> Result<c_int> {
    c_int::try_from(n)
        .map_err(|_| DistError::invalid(op, format!("{n} elements exceed MPI's int range")))
}

/// What an empty buffer points at: an empty `Vec<u8>`'s dangling pointer is 1, which is
/// Open MPI's `MPI_IN_PLACE`. MPI never reads or writes it (its count is 0).
static EMPTY: [u64; 1] = [0];

/// The address of `v`'s elements for MPI.
fn at<E>(v: &[E]) -> *const c_void {
    match v.is_empty() {
        true => EMPTY.as_ptr().cast(),
        false => v.as_ptr().cast(),
    }
}

/// The address of `v`'s elements for MPI to write.
fn at_mut<E>(v: &mut [E]) -> *mut c_void {
    match v.is_empty() {
        true => EMPTY.as_ptr().cast_mut().cast(),
        false => v.as_mut_ptr().cast(),
    }
}

fn datatype<E: Element>() -> ffi::MPI_Datatype {
    E::equivalent_datatype().as_raw()
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn barrier(&self) -> Result<()> {
        let comm = self.comm;
        // SAFETY: no buffers.
        self.run("barrier", (), |_, request| unsafe {
            ffi::MPI_Ibarrier(comm, request)
        })
    }

    fn broadcast<E: Element>(&self, root: usize, data: Vec<E>) -> Result<Vec<E>> {
        if root >= self.size {
            return Err(DistError::invalid(
                "broadcast",
                format!("root {root} of {} ranks", self.size),
            ));
        }
        let n = count("broadcast", data.len())?;
        let comm = self.comm;
        self.run("broadcast", data, |data, request| {
            // SAFETY: `data` holds `n` elements of the datatype and outlives the request.
            unsafe {
                ffi::MPI_Ibcast(
                    at_mut(data),
                    n,
                    datatype::<E>(),
                    root as c_int,
                    comm,
                    request,
                )
            }
        })
    }

    fn allreduce_sum<E: Element>(&self, data: Vec<E>) -> Result<Vec<E>> {
        let n = count("allreduce_sum", data.len())?;
        let sum = vec![E::default(); data.len()];
        let comm = self.comm;
        let (_, sum) = self.run("allreduce_sum", (data, sum), |(data, sum), request| {
            // SAFETY: both buffers hold `n` elements and outlive the request.
            unsafe {
                ffi::MPI_Iallreduce(
                    at(data),
                    at_mut(sum),
                    n,
                    datatype::<E>(),
                    ffi::RSMPI_SUM,
                    comm,
                    request,
                )
            }
        })?;
        Ok(sum)
    }

    fn all_gather<E: Element>(&self, data: Vec<E>, counts: &[usize]) -> Result<Vec<E>> {
        check_gather_counts(self.size, self.rank, counts, data.len())?;
        let n = count("all_gather", data.len())?;
        let (counts, displs) = ints("all_gather", counts)?;
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        let out = vec![E::default(); total];
        let comm = self.comm;
        let (_, out, _, _) = self.run(
            "all_gather",
            (data, out, counts, displs),
            |(data, out, counts, displs), request| {
                // SAFETY: `out` holds the sum of `counts` elements at `displs`; every
                // buffer outlives the request.
                unsafe {
                    ffi::MPI_Iallgatherv(
                        at(data),
                        n,
                        datatype::<E>(),
                        at_mut(out),
                        counts.as_ptr(),
                        displs.as_ptr(),
                        datatype::<E>(),
                        comm,
                        request,
                    )
                }
            },
        )?;
        Ok(out)
    }

    fn all_to_all<E: Element>(
        &self,
        data: Vec<E>,
        send: &[usize],
        recv: &[usize],
    ) -> Result<Vec<E>> {
        check_counts("all_to_all", self.size, send, data.len())?;
        let total = recv
            .iter()
            .try_fold(0usize, |a, &c| a.checked_add(c))
            .ok_or_else(|| DistError::invalid("all_to_all", "the counts overflow"))?;
        check_counts("all_to_all", self.size, recv, total)?;
        let (send_counts, send_displs) = ints("all_to_all", send)?;
        let (recv_counts, recv_displs) = ints("all_to_all", recv)?;
        let out = vec![E::default(); total];
        let comm = self.comm;
        let buffers = (
            data,
            out,
            send_counts,
            send_displs,
            recv_counts,
            recv_displs,
        );
        let (_, out, ..) = self.run(
            "all_to_all",
            buffers,
            |(data, out, sc, sd, rc, rd), request| {
                // SAFETY: each buffer holds the sum of its counts at its displacements;
                // every buffer outlives the request.
                unsafe {
                    ffi::MPI_Ialltoallv(
                        at(data),
                        sc.as_ptr(),
                        sd.as_ptr(),
                        datatype::<E>(),
                        at_mut(out),
                        rc.as_ptr(),
                        rd.as_ptr(),
                        datatype::<E>(),
                        comm,
                        request,
                    )
                }
            },
        )?;
        Ok(out)
    }
}

impl Drop for Mpi {
    fn drop(&mut self) {
        if self.broken.get_mut().is_some() {
            // MPI_Finalize would wait for the rank that is gone: leave it to the process's
            // exit (mpirun then ends the job)
            std::mem::forget(self.universe.take());
        }
    }
}
