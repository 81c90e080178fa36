# SPDX-License-Identifier: MIT
#
# Unit tests of the disk queue's on-disk formats (queue_format.c). test_queue_format
# also replays the fuzz_segment corpus and regressions (tests/fuzz/) through the real
# queue, in this production build, with the fuzzer's own checks (segment_check.c).

coapgate_add_unit_test(test_queue_format test_queue_format.c
	${CMAKE_CURRENT_LIST_DIR}/../fuzz/segment_check.c)
target_compile_definitions(test_queue_format PRIVATE
	COAPGATE_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
coapgate_add_unit_test(test_queue test_queue.c)
coapgate_add_unit_test(test_queue_model test_queue_model.c)
coapgate_add_unit_test(test_queue_full test_queue_full.c)
