// Declared rows: a plugin binds each column once to a field of its row type, and the column's
// type follows from the field's C++ type, so cells cannot drift out of order or out of type.
//
//   constexpr auto kModuleRow = declare_row(column<&Module::address, ColumnType::address>("Offset"),
//                                           column<&Module::name>("Module Name"), ...);
//   RowWriter writer(context.out, kModuleRow);
//   writer.write(module);
//
// Field types: integers (integer), bool (boolean), std::string (text), Code (bytes), and each of
// these wrapped in std::optional (empty: unreadable) or Maybe (an Absence says why it is empty).
// An unsigned 64-bit field may be declared as an address, a signed 64-bit one as a timestamp,
// and a Code field as disassembly.
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>

#include "vmi/plugin.hpp"

namespace vmi {

namespace rows_detail {

template <class T>
struct Traits;  // no cell conversion for this field type: declare it with a supported type

template <class T>
requires(std::integral<T> && !std::same_as<T, bool>) struct Traits<T> {
  static constexpr ColumnType type = ColumnType::integer;
  static Cell cell(T value) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) == 8) {
      return value;  // uint64: kept whole; an integer column renders it as unsigned
    } else {
      return static_cast<std::int64_t>(value);
    }
  }
};

template <>
struct Traits<bool> {
  static constexpr ColumnType type = ColumnType::boolean;
  static Cell cell(bool value) { return value; }
};

template <>
struct Traits<std::string> {
  static constexpr ColumnType type = ColumnType::text;
  static Cell cell(const std::string& value) { return value; }
};

template <>
struct Traits<Code> {
  static constexpr ColumnType type = ColumnType::bytes;
  static Cell cell(const Code& value) { return value; }
};

// A value type that spells itself (a device number as "major:minor") is a text cell.
template <class T>
requires requires(const T& value) {
  { value.text() } -> std::convertible_to<std::string>;
}
struct Traits<T> {
  static constexpr ColumnType type = ColumnType::text;
  static Cell cell(const T& value) { return value.text(); }
};

template <class T>
struct Traits<std::optional<T>> {
  static constexpr ColumnType type = Traits<T>::type;
  static Cell cell(const std::optional<T>& value) {
    if (!value) return Absence::unreadable;
    return Traits<T>::cell(*value);
  }
};

template <class T>
struct Traits<Maybe<T>> {
  static constexpr ColumnType type = Traits<T>::type;
  static Cell cell(const Maybe<T>& value) {
    if (const auto* absence = std::get_if<Absence>(&value)) return *absence;
    return Traits<T>::cell(std::get<T>(value));
  }
};

// The value type under optional/Maybe, to check a declared column type against.
template <class T>
struct Underlying {
  using type = T;
};
template <class T>
struct Underlying<std::optional<T>> {
  using type = T;
};
template <class T>
struct Underlying<Maybe<T>> {
  using type = T;
};

template <class T, ColumnType Declared>
constexpr bool compatible() {
  using U = typename Underlying<T>::type;
  if constexpr (Declared == Traits<T>::type) {
    return true;
  } else if constexpr (Declared == ColumnType::address) {
    return std::same_as<U, std::uint64_t>;
  } else if constexpr (Declared == ColumnType::timestamp) {
    return std::same_as<U, std::int64_t>;
  } else if constexpr (Declared == ColumnType::disassembly) {
    return std::same_as<U, Code>;
  } else {
    return false;
  }
}

template <class M>
struct MemberOf;
template <class R, class F>
struct MemberOf<F R::*> {
  using Row = R;
  using Field = F;
};

}  // namespace rows_detail

// One column of a row type R: its name and type, and how to read its cell from an R.
template <class R>
struct RowColumn {
  Column column;
  Cell (*cell)(const R& row);
};

// A column bound to the data member `Member` of the row type. The column type follows from the
// member's type; `Declared` narrows an integer to an address or timestamp, or bytes to disassembly.
template <auto Member,
          ColumnType Declared = rows_detail::Traits<typename rows_detail::MemberOf<decltype(Member)>::Field>::type>
constexpr auto column(std::string_view name) {
  using R = typename rows_detail::MemberOf<decltype(Member)>::Row;
  using F = typename rows_detail::MemberOf<decltype(Member)>::Field;
  static_assert(rows_detail::compatible<F, Declared>(), "the field's type cannot be shown as the declared column type");
  return RowColumn<R>{{name, Declared}, [](const R& row) { return rows_detail::Traits<F>::cell(row.*Member); }};
}

// A column bound to the data member `Inner` of the row's member `Outer`: a plugin's row that
// wraps a library object shows the object's fields beside its own.
template <auto Outer, auto Inner,
          ColumnType Declared = rows_detail::Traits<typename rows_detail::MemberOf<decltype(Inner)>::Field>::type>
constexpr auto nested_column(std::string_view name) {
  using R = typename rows_detail::MemberOf<decltype(Outer)>::Row;
  using F = typename rows_detail::MemberOf<decltype(Inner)>::Field;
  static_assert(std::same_as<typename rows_detail::MemberOf<decltype(Outer)>::Field,
                             typename rows_detail::MemberOf<decltype(Inner)>::Row>,
                "Inner must be a member of Outer's type");
  static_assert(rows_detail::compatible<F, Declared>(), "the field's type cannot be shown as the declared column type");
  return RowColumn<R>{{name, Declared}, [](const R& row) { return rows_detail::Traits<F>::cell(row.*Outer.*Inner); }};
}

// A row type's columns, in order: `columns` is what the Plugin declaration points at.
template <class R, std::size_t N>
struct RowDeclaration {
  std::array<RowColumn<R>, N> fields;
  std::array<Column, N> columns;
};

template <class R, class... Rest>
constexpr auto declare_row(RowColumn<R> first, Rest... rest) {
  constexpr std::size_t kCount = 1 + sizeof...(Rest);
  RowDeclaration<R, kCount> declaration{{first, rest...}, {}};
  for (std::size_t i = 0; i < kCount; ++i) declaration.columns[i] = declaration.fields[i].column;
  return declaration;
}

// A row value's cells, through its declaration (for plugins that must order rows before output).
template <class R, std::size_t N>
Row make_row(const RowDeclaration<R, N>& declaration, const R& value, std::uint32_t depth = 0) {
  Row row;
  row.cells.reserve(N);
  for (const RowColumn<R>& field : declaration.fields) row.cells.push_back(field.cell(value));
  row.depth = depth;
  return row;
}

// Turns row values into cells through their declaration and hands them to a sink, reusing one
// Row's storage for every row.
template <class R, std::size_t N>
class RowWriter {
 public:
  RowWriter(RowSink& out, const RowDeclaration<R, N>& declaration) : out_(out), declaration_(declaration) {
    row_.cells.resize(N);
  }
  // False when the sink wants no more rows.
  bool write(const R& value, std::uint32_t depth = 0) {
    for (std::size_t i = 0; i < N; ++i) row_.cells[i] = declaration_.fields[i].cell(value);
    row_.depth = depth;
    return out_.row(row_);
  }

 private:
  RowSink& out_;
  const RowDeclaration<R, N>& declaration_;
  Row row_;
};

}  // namespace vmi
