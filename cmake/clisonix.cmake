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
  target_compile_definitions(${name} PRIVATE
    CLISONIX_BINARY="$<TARGET_FILE:clisonix>"
    CLISONIX_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    CLISONIX_BUILD_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" ${ARG_PROPERTIES})
endfunction()
