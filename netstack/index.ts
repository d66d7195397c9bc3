/** pagelife's model of the Linux socket buffer and TCP send path, with per-fragment destructors. */
export { Page, PAGE_SIZE, PageRefError, getPage, putPage } from './page.ts';
export { FragDestructor, DestructorError, type DestructorOwner } from './destructor.ts';
export { SkbFrag } from './frag.ts';
export {
  SkBuff,
  SharedInfo,
  SkbError,
  MAX_SKB_FRAGS,
  SKBTX_SHARED_FRAG,
  TCPHDR_ACK,
  TCPHDR_FIN,
  TCPHDR_PSH,
  TCPHDR_SYN,
  NO_OWNER,
  type SkbOwner,
  allocSkb,
  freeSkb,
  skbClone,
  skbCloned,
  skbPut,
  skbAddFrag,
  skbCanCoalesce,
  skbCoalesce,
} from './skb.ts';
export {
  pskbCopy,
  skbCopy,
  pskbExpandHead,
  skbUnclone,
  pullTail,
  pskbTrimHead,
  pskbTrim,
  skbSplit,
  skbSegment,
  orphanFrags,
  skbCopyBits,
  skbViews,
  skbToBuffer,
} from './skb-ops.ts';
export { SkbRegistry, setSkbRegistry, skbRegistry } from './debug.ts';
export { EventBus, type EventSink, type NetstackEvent, type NetstackEventType, type NetstackBus } from './events.ts';
export { VirtualClock, RealClock, Timer, ClockError, type Clock, type TimerHandle } from './clock.ts';
export { Agenda } from './agenda.ts';
export { Rng } from './rng.ts';
export { DeviceQueue, type DeviceQueueEntry } from './device-queue.ts';
export { Path, DEFAULT_FAULTS, type PathFaults, type DropRange, type WireMode, type WireSegment, type WireAck } from './path.ts';
export { PcapWriter, TcpFlowCapture, DEFAULT_FLOW, type TcpFlowAddress } from './pcap.ts';
export { TcpSender, TcpError, tcpFragment, SK_PAGE_FRAG_SIZE, type TcpSenderOptions, type SenderPort } from './tcp/sender.ts';
export { TcpReceiver, DeliveryError, type DeliverFn, type TcpReceiverOptions } from './tcp/receiver.ts';
export { RenoCongestion } from './tcp/congestion.ts';
export { RtoEstimator } from './tcp/rto.ts';
export { before, after, seqAdd, seqDiff } from './tcp/seq.ts';
export {
  TcpPair,
  DrainError,
  TCP_PAIR_DEFAULTS,
  TCP_RTO_MIN,
  TCP_RTO_MAX,
  TCP_TIMEOUT_INIT,
  TCP_INIT_CWND,
  TCP_MSS_DEFAULT,
  TCP_DELACK_MIN,
  TCP_RCV_WND_DEFAULT,
  STALE_WINDOW_DEFAULT,
  type TcpPairOptions,
  type ConnectionStats,
  type PageFragment,
} from './connection.ts';
