/**
 * Typed events for maio's emitters. A class declares its event map (event
 * name -> its listener's arguments) and extends `TypedEmitter<Map>` (node's
 * EventEmitter, typed), so `socket.on('data', (buf) => ...)` knows `buf` is an
 * IoBuffer, `socket.on('dat', ...)` does not compile and neither does an
 * `emit` with the wrong arguments inside maio. Not `EventEmitter<Map>`: users'
 * older @types/node (before its emitter took a map) still read these types.
 */
import { EventEmitter } from 'node:events';

export type EventMap<M> = { [K in keyof M]: unknown[] };

/** An event without arguments takes any listener (`once('drain', resolve)`). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Listener<M extends EventMap<M>, K extends keyof M> = M[K] extends [] ? (...args: any[]) => void : (...args: M[K]) => void;

export interface TypedEvents<M extends EventMap<M>> {
  on<K extends keyof M & string>(event: K, listener: Listener<M, K>): this;
  once<K extends keyof M & string>(event: K, listener: Listener<M, K>): this;
  off<K extends keyof M & string>(event: K, listener: Listener<M, K>): this;
  addListener<K extends keyof M & string>(event: K, listener: Listener<M, K>): this;
  removeListener<K extends keyof M & string>(event: K, listener: Listener<M, K>): this;
  prependListener<K extends keyof M & string>(event: K, listener: Listener<M, K>): this;
  prependOnceListener<K extends keyof M & string>(event: K, listener: Listener<M, K>): this;
  emit<K extends keyof M & string>(event: K, ...args: M[K]): boolean;
}

/** The EventEmitter methods that take the event map. */
export type TypedMethods = 'on' | 'once' | 'off' | 'addListener' | 'removeListener' | 'prependListener' | 'prependOnceListener' | 'emit';

/** node:events' EventEmitter whose listener methods take event map M. */
export type TypedEmitterOf<M extends EventMap<M>> = Omit<EventEmitter, TypedMethods> & TypedEvents<M>;

/** EventEmitter itself, seen as a class generic over its event map. */
export const TypedEmitter = EventEmitter as unknown as new <M extends EventMap<M>>() => TypedEmitterOf<M>;
