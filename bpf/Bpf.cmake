# Compiles bpf/*.bpf.c with clang -target bpf (CO-RE) and generates a libbpf skeleton for each
# with bpftool, in the build tree. The INTERFACE target mend_skeletons carries their include
# directory; only agent/sensors includes the skeletons.
#
# vmlinux.h: generated from the build machine's /sys/kernel/btf/vmlinux, or taken from
# -DMEND_VMLINUX_H=path (for builders without BTF). CO-RE relocates field offsets at load time,
# so the header only needs to name the types, not match the target kernel.

find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(BPF_STRIP NAMES llvm-strip-14 llvm-strip REQUIRED)
set(MEND_VMLINUX_H "" CACHE FILEPATH "vmlinux.h to use instead of generating one")

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|amd64")
  set(BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(BPF_ARCH arm64)
else()
  message(FATAL_ERROR "mend: no BPF target arch for ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(BPF_OUT ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${BPF_OUT})

if(MEND_VMLINUX_H)
  configure_file(${MEND_VMLINUX_H} ${BPF_OUT}/vmlinux.h COPYONLY)
else()
  if(NOT EXISTS /sys/kernel/btf/vmlinux)
    message(FATAL_ERROR "mend: /sys/kernel/btf/vmlinux is missing; pass -DMEND_VMLINUX_H=")
  endif()
  add_custom_command(
    OUTPUT ${BPF_OUT}/vmlinux.h
    COMMAND ${BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c > ${BPF_OUT}/vmlinux.h
    COMMENT "Generating vmlinux.h from kernel BTF"
    VERBATIM)
endif()

set(MEND_SKELETON_HEADERS)
foreach(prog oom fs iolat)
  set(src ${CMAKE_SOURCE_DIR}/bpf/${prog}.bpf.c)
  set(obj ${BPF_OUT}/${prog}.bpf.o)
  set(skel ${BPF_OUT}/${prog}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${BPF_ARCH}
            -I${BPF_OUT} -I${CMAKE_SOURCE_DIR}/bpf -c ${src} -o ${obj}
    # Keep BTF (CO-RE needs it), drop DWARF: the object is embedded in mendd.
    COMMAND ${BPF_STRIP} -g ${obj}
    DEPENDS ${src} ${CMAKE_SOURCE_DIR}/bpf/mend_events.h ${CMAKE_SOURCE_DIR}/bpf/mend_common.bpf.h
            ${BPF_OUT}/vmlinux.h
    COMMENT "BPF ${prog}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${prog}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${prog}.skel.h"
    VERBATIM)
  list(APPEND MEND_SKELETON_HEADERS ${skel})
endforeach()

add_custom_target(mend_bpf DEPENDS ${MEND_SKELETON_HEADERS})
add_library(mend_skeletons INTERFACE)
add_dependencies(mend_skeletons mend_bpf)
target_include_directories(mend_skeletons INTERFACE ${BPF_OUT})
