# Embeds the migration files into a C source so that the collector binary
# carries its own schema (no install path to get wrong).  Run in script mode:
#   cmake -DOUT=... -DDIR=... -P embed_sql.cmake
file(GLOB files RELATIVE ${DIR} ${DIR}/*.sql)
list(SORT files)
set(body "/* Generated from collector/migrations by embed_sql.cmake; do not edit. */\n#include \"migrate.h\"\n")
set(table "const bm_migration_t bm_migrations[] = {\n")
set(i 0)
foreach(f ${files})
  file(READ ${DIR}/${f} content HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," content "${content}")
  string(APPEND body "static const char s_m${i}[] = {${content} 0x00};\n")
  string(REGEX MATCH "^([0-9]+)_" _ ${f})
  # "008" would be an (invalid) octal constant in C: emit the decimal value.
  math(EXPR version "${CMAKE_MATCH_1}" OUTPUT_FORMAT DECIMAL)
  string(APPEND table "    {${version}, \"${f}\", s_m${i}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND table "    {0, NULL, NULL}\n};\n")
file(WRITE ${OUT}.tmp "${body}${table}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
