# cmake -DCONSUMER_DIR=... -DBINARY_DIR=... -DGENERATOR=... -DCXX_COMPILER=... -DBUILD_TYPE=...
#       -DRILL_SOURCE_DIR=... -DRILL_VERSION=... [-DPREFIX_PATH=...] [-DMAKE_PROGRAM=...]
#       [-DGENERATOR_PLATFORM=...] [-DGENERATOR_TOOLSET=...] -P run_consumer.cmake
#
# Configures the consumer project in a fresh BINARY_DIR, builds it and runs its `consumer`.
foreach(v CONSUMER_DIR BINARY_DIR GENERATOR CXX_COMPILER RILL_SOURCE_DIR)
  if(NOT ${v})
    message(FATAL_ERROR "run_consumer.cmake: ${v} is not set")
  endif()
endforeach()

function(run step)
  message(STATUS "[${step}] ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "[${step}] failed (${rc})")
  endif()
endfunction()

file(REMOVE_RECURSE "${BINARY_DIR}")
file(MAKE_DIRECTORY "${BINARY_DIR}")

set(configure_args
  --no-warn-unused-cli
  -S "${CONSUMER_DIR}" -B "${BINARY_DIR}" -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  "-DRILL_SOURCE_DIR=${RILL_SOURCE_DIR}"
  "-DRILL_EXPECTED_VERSION=${RILL_VERSION}"
  # Never let a user-wide package registry find another rill.
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(GENERATOR_PLATFORM)
  list(APPEND configure_args -A "${GENERATOR_PLATFORM}")
endif()
if(GENERATOR_TOOLSET)
  list(APPEND configure_args -T "${GENERATOR_TOOLSET}")
endif()
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(BUILD_TYPE)
  list(APPEND configure_args "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
endif()
if(PREFIX_PATH)
  list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${PREFIX_PATH}")
endif()

run(configure "${CMAKE_COMMAND}" ${configure_args})

set(build_args --build "${BINARY_DIR}")
if(BUILD_TYPE)
  list(APPEND build_args --config "${BUILD_TYPE}")
endif()
run(build "${CMAKE_COMMAND}" ${build_args})

# Single- and multi-config generators put the program in different places.
set(exe "")
foreach(candidate "${BINARY_DIR}/consumer" "${BINARY_DIR}/${BUILD_TYPE}/consumer"
                  "${BINARY_DIR}/consumer.exe" "${BINARY_DIR}/${BUILD_TYPE}/consumer.exe")
  if(EXISTS "${candidate}" AND NOT IS_DIRECTORY "${candidate}")
    set(exe "${candidate}")
    break()
  endif()
endforeach()
if(NOT exe)
  message(FATAL_ERROR "consumer executable not found under ${BINARY_DIR}")
endif()
run(run "${exe}")
