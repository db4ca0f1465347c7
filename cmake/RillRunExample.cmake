# cmake -DPROGRAM=<exe> -DDATA_DIR=<dir> [-DRUNS=<n>] -P RillRunExample.cmake
#
# Runs an example on a fresh data directory RUNS times in a row (later runs reopen what the
# earlier ones wrote) and fails if any run exits non-zero.
if(NOT PROGRAM OR NOT DATA_DIR)
  message(FATAL_ERROR "usage: cmake -DPROGRAM=<exe> -DDATA_DIR=<dir> [-DRUNS=<n>] -P ${CMAKE_CURRENT_LIST_FILE}")
endif()
if(NOT RUNS)
  set(RUNS 1)
endif()
file(REMOVE_RECURSE "${DATA_DIR}")
foreach(i RANGE 1 ${RUNS})
  message(STATUS "run ${i}/${RUNS}: ${PROGRAM} ${DATA_DIR}")
  execute_process(COMMAND "${PROGRAM}" "${DATA_DIR}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "run ${i}/${RUNS} of ${PROGRAM} failed: ${rc}")
  endif()
endforeach()
file(REMOVE_RECURSE "${DATA_DIR}")
