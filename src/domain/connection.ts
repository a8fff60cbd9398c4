/**
 * One WebSocket as the rest of the api sees it: who holds it, which chats' events it receives,
 * and how to write to it. The gateway (src/ws/) makes them; the registry (src/realtime/) indexes
 * them; services and features only use them.
 */
export interface Connection {
  readonly id: string;
  readonly userId: string;
  /** Chats whose events this connection receives: the user's set, shared by their connections here. */
  readonly chats: ReadonlySet<string>;
  /**
   * Writes an already-serialised frame (may drop typing/presence, or close a slow consumer).
   * `encoded`, when given, is the frame's UTF-8 bytes: a frame for many sockets is encoded once.
   */
  send(frame: string, encoded?: Buffer): void;
  /**
   * Null when the socket can take more now, else resolves once it has drained (true) or closed
   * (false): bulk writers such as `sync` wait on it so that they keep pace with the client.
   */
  drained?(): Promise<boolean> | null;
  /** Closes the socket with a WebSocket close code (its client reconnects). */
  close(code: number, reason: string): void;
}
