import type { SourceRow, SqlValue } from '../sqliteSource';
import type { TargetName, TargetRow } from '../targets';
import type { MapContext, MapResult } from './common';

/** One MaiBot table that has a home here, and how its rows map. */
export interface SourceTableSpec {
  readonly source: string;
  /** Tables here its rows go to, in insert order (a parent before its children). */
  readonly targets: readonly TargetName[];
  /** Pure: a source row to its rows here (or a reason to skip it). */
  map(row: SourceRow, ctx: MapContext): MapResult;
}

/** Where a table refers to a chat, so chats that no longer exist can be recreated from the reference. */
export interface ChatReference {
  readonly table: string;
  readonly column: string;
}

/** A MaiBot database generation: which tables it has, how each maps, how chats are found. */
export interface Generation {
  readonly name: '0.x' | '1.x';
  /** The chats table and its id column. */
  readonly chats: { readonly table: string; readonly idColumn: string };
  /** Pure: a chats-table row to a chat stream here. */
  mapChat(row: SourceRow, ctx: Pick<MapContext, 'agentId' | 'defaultPlatform'>): TargetRow | null;
  /** Pure: a chat stream for a chat id that rows refer to but the chats table lacks. */
  orphanChat(
    chatId: string,
    sample: Readonly<Record<string, SqlValue>> | undefined,
    ctx: Pick<MapContext, 'agentId' | 'defaultPlatform'>,
  ): TargetRow;
  /** The columns referring to chats; the first table's rows (if any) describe an orphan chat best. */
  readonly chatReferences: readonly ChatReference[];
  /** Tables with a home here, in import order (after the chats). */
  readonly tables: readonly SourceTableSpec[];
  /** Tables known to have no home here (listed with counts); unknown tables are listed as well. */
  readonly noHome: Readonly<Record<string, string>>;
}
