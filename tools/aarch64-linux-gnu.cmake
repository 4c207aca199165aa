# CMake toolchain file: bitttt for 64-bit ARM Linux (aarch64), cross-compiled on a Debian 12
# x86-64 host and run under qemu-user. tools/test-arm64.sh installs what it needs and uses it:
#
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=tools/aarch64-linux-gnu.cmake
#
# Compilers: Debian's g++-aarch64-linux-gnu (its C and C++ runtime in /usr/aarch64-linux-gnu).
# Libraries: the compiled ones are Debian's arm64 packages installed side by side with the
#   amd64 ones through multiarch (dpkg --add-architecture arm64; libspdlog-dev:arm64,
#   libfmt-dev:arm64, libxxhash-dev:arm64 in /usr/lib/aarch64-linux-gnu, with their CMake
#   and pkg-config files there); the header-only ones (CLI11, nlohmann-json, Eigen, Catch2 v2)
#   are the host's, in /usr/include and /usr/share, which serve every architecture.
# Running: CMAKE_CROSSCOMPILING_EMULATOR starts every aarch64 program CMake runs (Catch2's
#   test discovery after the build, each ctest test) as `qemu-aarch64 PROGRAM` (below: why
#   not `-L /usr/aarch64-linux-gnu`); QEMU_CPU in the environment picks the CPU model (qemu's
#   default: max). Programs the tests start themselves (bitttt, bitttt-run, bitttt-synth) go
#   through the same emulator by way of small scripts in <build>/emulated (CMakeLists.txt),
#   since this host runs no aarch64 program on its own (no binfmt_misc registration).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Debian's multiarch folders (/usr/lib/aarch64-linux-gnu, /usr/include/aarch64-linux-gnu).
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Search the cross runtime's folder and the host's root, where multiarch puts the arm64
# libraries under their own triplet (the amd64 ones in x86_64-linux-gnu are never searched);
# programs (pkg-config, qemu) are the host's.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (xxHash): the arm64 .pc files, and the architecture-independent ones; never the
# host's /usr/lib/x86_64-linux-gnu/pkgconfig. (Read again at every configure.)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
unset(ENV{PKG_CONFIG_SYSROOT_DIR})

# The arm64 runtime the programs run with. Debian's arm64 libraries (multiarch) bring the
# arm64 C library with them (libc6:arm64: /lib/ld-linux-aarch64.so.1 and
# /lib/aarch64-linux-gnu/libc.so.6, kept at the amd64 libc6's version by apt), so qemu needs
# no -L and every program runs on that one consistent set. Do not add
# `-L /usr/aarch64-linux-gnu` then: qemu would load the cross toolchain's dynamic loader
# (libc6-arm64-cross, glibc 2.36-8cross1) while that loader picks libc.so.6 from
# /lib/aarch64-linux-gnu (2.36-9+deb12uN) first, and the mismatched pair hangs in
# pthread_create (a busy loop: any program that starts a thread never finishes).
# Without the multiarch libc (e.g. static builds), the cross toolchain's runtime is used.
find_program(BITTTT_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(BITTTT_QEMU_AARCH64)
  if(EXISTS /lib/ld-linux-aarch64.so.1)
    set(CMAKE_CROSSCOMPILING_EMULATOR "${BITTTT_QEMU_AARCH64}")
  else()
    set(CMAKE_CROSSCOMPILING_EMULATOR "${BITTTT_QEMU_AARCH64};-L;/usr/aarch64-linux-gnu")
  endif()
endif()
