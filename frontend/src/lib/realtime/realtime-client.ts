import ReconnectingWebSocket from 'partysocket/ws';
import { type ClientFrame, parseServerFrame, type ServerFrame } from './frames';

/**
 * - `connecting`: no open connection; (re)connecting with backoff.
 * - `syncing`: connected; the `sync` is out and missed messages are arriving.
 * - `online`: `synced` came back: the caches are complete and live.
 * - `offline`: stopped (logged out or the session was revoked).
 */
export type ConnectionStatus = 'connecting' | 'syncing' | 'online' | 'offline';

export type FrameListener = (frame: ServerFrame) => void;

export interface RealtimeClientOptions {
  /** Called before every (re)connect, so each attempt carries a fresh access token. */
  url: () => Promise<string>;
  /** The highest seq held per room, sent as `sync` on every (re)connect. */
  cursors: () => Record<string, number>;
  /** The session was revoked (close code 1008): go to the login page. */
  onRevoked?: () => void;
  /** A connection attempt failed before opening (a revoked token looks like this too). */
  onConnectFailure?: () => void;
  /** A WebSocket constructor (tests pass a fake). */
  WebSocket?: unknown;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  minReconnectionDelay?: number;
  maxReconnectionDelay?: number;
  connectionTimeout?: number;
}

/** Close codes chat-api uses. */
export const CLOSE_REVOKED = 1008;
export const CLOSE_TOO_SLOW = 4000;

/**
 * The one WebSocket of a logged-in user: reconnects with backoff (partysocket), resyncs with
 * `sync` after every connect, detects dead connections with pings, and fans frames out to
 * listeners (which update the query cache).
 */
export class RealtimeClient {
  private socket: ReconnectingWebSocket | null = null;
  private statusValue: ConnectionStatus = 'offline';
  private readonly frameListeners = new Set<FrameListener>();
  private readonly statusListeners = new Set<() => void>();
  private opened = false;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly options: Required<Omit<RealtimeClientOptions, 'onRevoked' | 'onConnectFailure' | 'WebSocket'>> &
    Pick<RealtimeClientOptions, 'onRevoked' | 'onConnectFailure' | 'WebSocket'>;

  constructor(options: RealtimeClientOptions) {
    this.options = {
      pingIntervalMs: 25_000,
      pongTimeoutMs: 10_000,
      minReconnectionDelay: 500 + Math.random() * 1000,
      maxReconnectionDelay: 10_000,
      connectionTimeout: 8_000,
      ...options,
    };
  }

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  start(): void {
    if (this.socket) return;
    this.setStatus('connecting');
    this.socket = this.createSocket();
    if (typeof window !== 'undefined') {
      window.addEventListener('online', this.handleOnline);
      window.addEventListener('offline', this.handleOffline);
      document.addEventListener('visibilitychange', this.handleVisible);
    }
  }

  stop(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    this.discard(socket);
    if (typeof window !== 'undefined') {
      window.removeEventListener('online', this.handleOnline);
      window.removeEventListener('offline', this.handleOffline);
      document.removeEventListener('visibilitychange', this.handleVisible);
    }
    this.setStatus('offline');
  }

  private createSocket(): ReconnectingWebSocket {
    const socket = new ReconnectingWebSocket(this.options.url, null, {
      WebSocket: this.options.WebSocket,
      // Frames are never queued while disconnected: a stale typing or read notice is useless,
      // and unsent messages are re-sent by their owner after `synced`.
      maxEnqueuedMessages: 0,
      minReconnectionDelay: this.options.minReconnectionDelay,
      maxReconnectionDelay: this.options.maxReconnectionDelay,
      connectionTimeout: this.options.connectionTimeout,
      shouldReconnectOnClose: (event) => event.code !== CLOSE_REVOKED,
    });
    socket.addEventListener('open', this.handleOpen);
    socket.addEventListener('message', this.handleMessage);
    socket.addEventListener('close', this.handleClose);
    return socket;
  }

  private discard(socket: ReconnectingWebSocket): void {
    this.stopPinging();
    this.opened = false;
    socket.removeEventListener('open', this.handleOpen);
    socket.removeEventListener('message', this.handleMessage);
    socket.removeEventListener('close', this.handleClose);
    socket.close(1000, 'closed by the client');
  }

  /**
   * Drops the connection and connects again at once (then resyncs), skipping any backoff wait
   * in progress: partysocket's own reconnect() cannot cut a pending wait short, so the socket
   * is replaced.
   */
  reconnect(): void {
    const socket = this.socket;
    if (!socket) return;
    this.discard(socket);
    this.setStatus('connecting');
    this.socket = this.createSocket();
  }

  /** Sends a frame if the connection is open; false when it is not (nothing is queued). */
  send(frame: ClientFrame): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== socket.OPEN) return false;
    return socket.send(JSON.stringify(frame));
  }

  onFrame(listener: FrameListener): () => void {
    this.frameListeners.add(listener);
    return () => this.frameListeners.delete(listener);
  }

  subscribeStatus(listener: () => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private setStatus(status: ConnectionStatus): void {
    if (this.statusValue === status) return;
    this.statusValue = status;
    for (const listener of [...this.statusListeners]) listener();
  }

  private readonly handleOpen = (): void => {
    this.opened = true;
    this.setStatus('syncing');
    this.send({ type: 'sync', cursors: this.options.cursors() });
    this.startPinging();
  };

  private readonly handleMessage = (event: MessageEvent): void => {
    // Any frame proves the connection alive.
    if (this.pongTimer !== null) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
    if (typeof event.data !== 'string') return;
    const frame = parseServerFrame(event.data);
    if (!frame) return;
    if (frame.type === 'synced') this.setStatus('online');
    for (const listener of [...this.frameListeners]) {
      try {
        listener(frame);
      } catch (error) {
        console.error('realtime listener failed', error);
      }
    }
  };

  private readonly handleClose = (event: { code: number }): void => {
    this.stopPinging();
    const wasOpen = this.opened;
    this.opened = false;
    if (!this.socket) return;
    if (event.code === CLOSE_REVOKED) {
      this.stop();
      this.options.onRevoked?.();
      return;
    }
    this.setStatus('connecting');
    if (!wasOpen) this.options.onConnectFailure?.();
  };

  private readonly handleOnline = (): void => {
    if (this.statusValue === 'connecting') this.reconnect();
  };

  /**
   * The browser says the network is gone. An open socket can linger for a long time before
   * anything notices (and the browser may not close it at all), so drop it now: the status
   * tells the user, and new messages wait for the reconnect instead of vanishing into it.
   */
  private readonly handleOffline = (): void => {
    if (this.statusValue !== 'connecting') this.reconnect();
  };

  private readonly handleVisible = (): void => {
    if (document.visibilityState !== 'visible') return;
    if (this.statusValue === 'connecting') this.reconnect();
    else this.checkAlive();
  };

  private startPinging(): void {
    this.stopPinging();
    this.pingTimer = setInterval(() => this.checkAlive(), this.options.pingIntervalMs);
  }

  private stopPinging(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    if (this.pongTimer !== null) clearTimeout(this.pongTimer);
    this.pingTimer = null;
    this.pongTimer = null;
  }

  /** Pings; without any frame back in time the connection is dead: reconnect. */
  private checkAlive(): void {
    if (this.pongTimer !== null || !this.send({ type: 'ping' })) return;
    this.pongTimer = setTimeout(() => {
      this.pongTimer = null;
      this.reconnect();
    }, this.options.pongTimeoutMs);
  }
}
