# Helpers shared by every module's CMakeLists.txt.

# clisonix_add_module(NAME SOURCES... [DEPS targets...])
# One static library per module, linked as clisonix::NAME. Every module is compiled with
# src/ on the include path, so includes read "config/config.h".
function(clisonix_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(clisonix_${name} STATIC ${ARG_SOURCES})
  add_library(clisonix::${name} ALIAS clisonix_${name})
  target_include_directories(clisonix_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(clisonix_${name} PUBLIC ${ARG_DEPS})
endfunction()

# clisonix_add_test(NAME SOURCES... [DEPS targets...] [LABELS label] [PROPERTIES ...])
# One GoogleTest executable; its tests are registered with CTest one by one so that
# `ctest -j` runs them in parallel. One label only: a list would be split on its way
# through gtest_discover_tests and swallow the PROPERTIES after it.
function(clisonix_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS;PROPERTIES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  # The checkout's absolute paths, only for the sources that use them (by name, or through
  # support/pg_test_db.h or support/shared_data.h): ccache hashes every -D, so on every other
  # source they would make a checkout at another path (a CI clone, a worktree) miss the cache.
  foreach(source IN LISTS ARG_SOURCES)
    get_filename_component(source_path ${source} ABSOLUTE)
    file(READ ${source_path} text)
    if(text MATCHES "CLISONIX_(BINARY|SOURCE_DIR|BUILD_DIR)|support/pg_test_db\\.h|support/shared_data\\.h")
      set_property(SOURCE ${source} APPEND PROPERTY COMPILE_DEFINITIONS
        CLISONIX_BINARY="$<TARGET_FILE:clisonix>"
        CLISONIX_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
        CLISONIX_BUILD_DIR="${PROJECT_BINARY_DIR}")
    endif()
  endforeach()
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" ${ARG_PROPERTIES})
endfunction()

# clisonix_add_bench(NAME SOURCES... [DEPS targets...])
# A Google Benchmark executable under bench/, built with -DCLISONIX_BUILD_BENCH=ON.
function(clisonix_add_bench name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/bench
    ${PROJECT_SOURCE_DIR}/tests)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench)
endfunction()

# clisonix_add_fuzzer(NAME SOURCES... [DEPS targets...])
# A libFuzzer target under fuzz/, built with clang and -DCLISONIX_FUZZ=ON (scripts/fuzz).
function(clisonix_add_fuzzer name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/fuzz)
endfunction()
