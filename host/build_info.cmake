# Writes OUTPUT (a C++ source defining sgdwalk_version() and sgdwalk_git_commit()) at every build,
# not at configure time: the commit recorded in summary.json and results.h5 is the one the binary
# was built from, with "-dirty" when tracked files differed from it ("unknown" outside a git
# checkout). The file is replaced only when its text changes, so an unchanged commit recompiles
# nothing.
#   cmake -DSOURCE_DIR=... -DOUTPUT=... -DVERSION=... -P build_info.cmake
# --no-optional-locks: a build running beside `git commit` must not take git's index lock.
execute_process(COMMAND git --no-optional-locks rev-parse --short=12 HEAD
                WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE status)
if(NOT status EQUAL 0 OR commit STREQUAL "")
  set(commit unknown)
else()
  execute_process(COMMAND git --no-optional-locks diff --quiet HEAD -- WORKING_DIRECTORY ${SOURCE_DIR}
                  RESULT_VARIABLE changed ERROR_QUIET)
  if(changed EQUAL 1)
    string(APPEND commit "-dirty")
  endif()
endif()
set(text "// Generated at build time by host/build_info.cmake.
#include \"run/driver.hpp\"

namespace sgdwalk {
std::string sgdwalk_version() { return \"${VERSION}\"; }
std::string sgdwalk_git_commit() { return \"${commit}\"; }
}  // namespace sgdwalk
")
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} previous)
else()
  set(previous "")
endif()
if(NOT previous STREQUAL text)
  file(WRITE ${OUTPUT} "${text}")
endif()
