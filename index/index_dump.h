// The logical form of an index at rest: its schema and every row, column by column, instead of
// its B-tree pages. SQLite keeps every key twice or more (table, unique index, other indexes),
// in pages with headers, cell pointers and free space; the rows alone, column by column with
// integers as deltas, compress much better: measured on the bench corpus's kernel sources,
// 98,943 bytes of zstd -19 of the VACUUMed index.db against about 55,000 of this form.
//
// Format (little-endian varints: 7 bits per byte, high bit = more):
//   "DZIDXv1\n"                       magic (8 bytes)
//   varint page_size
//   varint n_objects, then n times:   u8 kind ('t' table, 'i' index, 'v' view, 'r' trigger),
//                                     str name, str sql          (sqlite_schema order)
//   varint n_tables, then n times:    str name, u8 has_rowid, varint n_columns (rowid first when
//                                     has_rowid), varint n_rows, then column by column, row by
//                                     row, one value each:
//       u8 0: NULL · 1: integer, zigzag varint of (value − previous integer of this column)
//       · 2: real, 8 bytes · 3: text, str · 4: blob, str
//   str = varint length, bytes. Integers of a column start from a previous value of 0.
// A table with an INTEGER PRIMARY KEY has that column as its rowid (has_rowid 0). Internal
// objects (sqlite_autoindex_*, sqlite_stat*) are not listed; sqlite_sequence is a table whose
// rows are restored after the others'.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "index/status.h"

namespace dzfs::index_dump {

inline constexpr char kMagic[8] = {'D', 'Z', 'I', 'D', 'X', 'v', '1', '\n'};

// The logical form of the SQLite database file at db_path (opened read-only).
Result<std::string> dump(const std::string& db_path);
// Builds a new database file at out_path (which must not exist) from a dump, synced to disk
// and in rollback-journal mode. Damage (a bad magic, a truncated value, SQL that fails) is an
// EIO error naming what was wrong; nothing of out_path is left then.
Status restore(std::span<const uint8_t> dump, const std::string& out_path);

}  // namespace dzfs::index_dump
