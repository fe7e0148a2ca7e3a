//! # kiln-dist
//!
//! Data-parallel training across processes and machines, over MPI, with results
//! bit-identical to one process's for any number of them. Gluon users reach for
//! `kvstore='dist_sync'` or Horovod, PyTorch users for DDP; kiln's [`DataParallel`]
//! already makes a run's arithmetic depend on the number of shards alone, never on the
//! number of threads, and [`DistDataParallel`] carries that across processes: each batch
//! is cut into the same shards, each rank computes its own run of them, and their
//! gradients are summed in shard order ([`Reduction::ShardOrder`]), so 1, 2 or 3 ranks
//! write the same checkpoint, byte for byte, as one process with the same shards.
//!
//! The collectives are behind the [`Communicator`] trait: [`Local`] (one process),
//! [`ThreadComm`] (ranks as threads of one process, for tests) and, with the cargo
//! feature `mpi`, `Mpi` (Open MPI through the `mpi` crate).
//!
//! ```
//! use kiln_dist::{threads, Communicator, DistConfig, DistDataParallel, Part};
//! use kiln_nn::{zoo::lenet, Activation, BlockExt, Init, Labels, Sgd, Trainer};
//! use kiln_tensor::Tensor;
//! // two ranks as two threads; each computes half of the batch's 4 shards
//! let ranks: Vec<_> = threads::world(2)
//!     .into_iter()
//!     .map(|comm| {
//!         std::thread::spawn(move || -> Result<Vec<u32>, kiln_dist::DistError> {
//!             let make = || lenet::<f32>(Activation::Relu);
//!             let net = make();
//!             net.initialize(&Init::xavier(), 0)?;
//!             net.predict(&Tensor::zeros([1, 1, 28, 28]))?;
//!             let dist = DistDataParallel::new(&comm, &net, make, DistConfig::new(4))?;
//!             let mut trainer = Trainer::new(net.collect_params(), Sgd::new(0.1));
//!             let samples = dist.layout(8).samples_of(comm.rank());
//!             let part = Part {
//!                 images: Tensor::full([samples.len(), 1, 28, 28], 0.5),
//!                 labels: Labels::Classes(samples.map(|i| i % 10).collect()),
//!                 batch_len: 8,
//!             };
//!             dist.gradient(part, trainer.random_key())?;
//!             trainer.step(8)?;
//!             let w = net.collect_params().get("0.weight").unwrap().data()?;
//!             Ok(w.data().iter().map(|v| v.to_bits()).collect())
//!         })
//!     })
//!     .collect();
//! let weights: Vec<_> = ranks.into_iter().map(|r| r.join().unwrap().unwrap()).collect();
//! assert_eq!(weights[0], weights[1]);
//! ```

#![warn(missing_docs)]

pub mod comm;
mod ddp;
mod epoch;
pub mod error;
pub mod layout;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod reduce;
mod state;
pub mod threads;
mod wire;

pub use comm::{agree, broadcast_bytes, check_same, gather_bytes, Communicator, Element, Local};
pub use ddp::{DistConfig, DistDataParallel, Part, StepOutcome, StepTimes};
pub use epoch::{PartSource, SkipBatches, WholeBatches};
pub use error::{DistError, Result};
pub use layout::Layout;
#[cfg(feature = "mpi")]
pub use mpi::Mpi;
pub use reduce::Reduction;
pub use threads::ThreadComm;

#[doc(no_inline)]
pub use kiln_nn::DataParallel;
