# Writes a C source holding the bytes of INPUT as dzfs_default_model[] (an empty array if INPUT
# does not exist: the binary then uses a seeded random-init model, see default_model_fallback).
if(EXISTS "${INPUT}")
  file(READ "${INPUT}" hex HEX)
  string(LENGTH "${hex}" n)
  math(EXPR size "${n} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
else()
  set(size 0)
  set(body "0")
endif()
file(WRITE "${OUTPUT}.tmp" "/* generated from ${INPUT} */\nconst unsigned char dzfs_default_model[] = {${body}};\nconst unsigned long dzfs_default_model_size = ${size};\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
