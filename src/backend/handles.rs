//! The handles a control client steers the wrappers of a running backend with.

use super::impair::ImpairHandle;
#[cfg(feature = "pcap")]
use super::pcap_record::RecorderHandle;
#[cfg(feature = "pcap")]
use super::pcap_replay::ReplayHandle;

/// Handles to the parts of a backend chain that can be steered at run time, each shared
/// with its wrapper (or the replay) and usable from another thread without the device
/// lock: [`BackendSpec::open_with_handles`](crate::config::BackendSpec::open_with_handles)
/// returns them with the backend it builds. `None`: the chain has no such part.
#[derive(Clone, Debug, Default)]
pub struct Handles {
    /// The pcap recorder (`record start|stop|status`).
    #[cfg(feature = "pcap")]
    pub recorder: Option<RecorderHandle>,
    /// The impairment (`impair get|set`).
    pub impair: Option<ImpairHandle>,
    /// The pcap replay (`replay pause|resume|status`).
    #[cfg(feature = "pcap")]
    pub replay: Option<ReplayHandle>,
}
