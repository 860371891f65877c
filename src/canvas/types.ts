/** Options a signature carries into its node. */
export interface SignatureOptions {
  /** The queue the node is routed to (default: the task's queue, else `default`). */
  readonly queue?: string;
  /** Higher runs first within a queue (default 0). */
  readonly priority?: number;
}

/** A task call: name + bound arguments; `immutable` ignores the parent's result. Pure data. */
export interface SignatureData {
  readonly kind: 'signature';
  readonly task: string;
  readonly args: readonly unknown[];
  readonly immutable: boolean;
  readonly options: SignatureOptions;
}
/** Steps in sequence, each receiving the previous step's result. */
export interface ChainData {
  readonly kind: 'chain';
  readonly steps: readonly CanvasData[];
}
/** Members in parallel; the result is an array in member order. */
export interface GroupData {
  readonly kind: 'group';
  readonly members: readonly CanvasData[];
}
/** A group whose array of results feeds one body. */
export interface ChordData {
  readonly kind: 'chord';
  readonly header: GroupData;
  readonly body: CanvasData;
}
/** One node per argument list, in parallel (`map` wraps each item as `[item]`). */
export interface MapData {
  readonly kind: 'map';
  readonly task: string;
  readonly argLists: readonly (readonly unknown[])[];
  readonly options: SignatureOptions;
}
/** A group of starmaps over slices of `size` argument lists; the result is an array of arrays. */
export interface ChunksData {
  readonly kind: 'chunks';
  readonly task: string;
  readonly argLists: readonly (readonly unknown[])[];
  readonly size: number;
  readonly options: SignatureOptions;
}

/** Any canvas, as plain data (what `compile` reads). */
export type CanvasData = SignatureData | ChainData | GroupData | ChordData | MapData | ChunksData;

declare const io: unique symbol;

/**
 * A canvas with its types: `In` is the value it expects from a parent step (`never`: it takes none,
 * `unknown`: it ignores it), `Out` the value it produces. The types live only in the type system.
 *
 * @example
 * const step: Canvas<number, number> = add.s(1) // add(a: number, b: number): number
 */
export type Canvas<In = any, Out = unknown> = CanvasData & {
  readonly [io]?: { readonly input: (value: In) => void; readonly output: Out };
};

/** Any canvas, whatever its types. */
export type AnyCanvas = CanvasData & { readonly [io]?: { readonly input: (value: never) => void; readonly output: unknown } };
/** The value a canvas expects from its parent. */
export type InOf<C> = C extends { readonly [io]?: { readonly input: (value: infer I) => void } } ? I : never;
/** The value a canvas produces. */
export type OutOf<C> = C extends { readonly [io]?: { readonly output: infer O } } ? O : never;
