/**
 * The server's one event bus. `createCore` makes it; each layer raises only its own kinds on it
 * (it is handed the bus as an EventSink of those): the netstack (skbs, segments, ACKs,
 * destructors), the dispatcher (calls, replies, DRC hits), the page cache (frames) and the reply
 * path (pins, releases, orphans, connections, fault changes). Telemetry, the fixture recorder and
 * the replay runner are plain subscribers.
 */
import { EventBus } from '../netstack/events.ts';
import type { NetstackEvent } from '../netstack/events.ts';
import type { RpcEvent } from '../rpc/dispatch.ts';
import type { PageCacheEvent } from './pagecache/page-cache.ts';
import type { ReplyEvent } from './reply/types.ts';

export type ServerEvent = NetstackEvent | RpcEvent | PageCacheEvent | ReplyEvent;
export type ServerEventType = ServerEvent['type'];

export type ServerBus = EventBus<ServerEvent>;

export function createServerBus(): ServerBus {
  return new EventBus<ServerEvent>();
}
