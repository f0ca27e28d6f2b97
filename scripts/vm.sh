#!/usr/bin/env bash
# The test VM for the USB security-key path (issue 13): Debian's kernel and QEMU, taken from
# Debian's packages with `apt-get download` (never installed: Debian's qemu-system-x86 conflicts
# with newer QEMU tools some machines have) and unpacked under target/vm, where they stay
# cached between runs; a small initramfs with busybox, the kernel's HID modules (hid, uhid,
# hid-generic: without hid-generic no hidraw node appears) and the program to run. QEMU runs
# with software emulation (TCG): the nested /dev/kvm seen on CI machines is far slower.
#
#   bash scripts/vm.sh selftest usb-roundtrip usb-no-touch usb-cancel usb-two-keys usb-removed
#
# Runs each named scenario of `countersign-vkey` in one boot (selftest: the key's transport
# through the guest kernel's hidraw; usb-roundtrip: the approver's UsbSigner makes a
# credential and signs with it; usb-no-touch: the signer times out; usb-cancel: the person
# cancels while the key waits; usb-two-keys: only the touched one of two keys makes the
# credential; usb-removed: the key pulled out mid-ceremony is reported as removed), prints the
# guest's console, and fails if any scenario failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VM="$ROOT/target/vm"
DEBS="$VM/debs"
SYS="$VM/root"
TIMEOUT=${COUNTERSIGN_VM_TIMEOUT:-240}

SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || { echo "usage: bash scripts/vm.sh SCENARIO..." >&2; exit 2; }
for scenario in "${SCENARIOS[@]}"; do
  case "$scenario" in
    selftest | usb-roundtrip | usb-no-touch | usb-cancel | usb-two-keys | usb-removed) ;;
    *) echo "unknown scenario: $scenario" >&2; exit 2 ;;
  esac
done

for tool in apt-get dpkg-deb cpio gzip; do
  command -v "$tool" >/dev/null || { echo "scripts/vm.sh needs $tool (scripts/setup.sh installs cpio)" >&2; exit 1; }
done

# The kernel package the metapackage points at today (older ABI numbers leave the mirror).
kernel_package() {
  apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1
}

# QEMU and the libraries it needs that a build machine does not have; the guest's busybox.
PACKAGES=(qemu-system-x86 qemu-system-common qemu-system-data seabios busybox-static
  libcapstone4 libfdt1 libpmem1 librdmacm1 libibverbs1 libslirp0 libvdeplug2
  libnl-3-200 libnl-route-3-200 libndctl6 libdaxctl1)

if [ ! -e "$SYS/.complete" ]; then
  echo "== the VM's packages from Debian (once; cached in target/vm)"
  rm -rf "$DEBS" "$SYS"
  mkdir -p "$DEBS" "$SYS"
  download() {
    local kernel
    kernel=$(kernel_package)
    [ -n "$kernel" ] || return 1
    (cd "$DEBS" && apt-get download -q "${PACKAGES[@]}" "$kernel" 2>&1) \
      | grep -v '^W: Download is performed unsandboxed'
    return "${PIPESTATUS[0]}"
  }
  # Stale package lists name versions the mirror no longer has: refresh them once and retry.
  if ! download; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    rm -f "$DEBS"/*.deb
    download
  fi
  for deb in "$DEBS"/*.deb; do dpkg-deb -x "$deb" "$SYS"; done
  ls "$SYS"/boot/vmlinuz-* >/dev/null
  # Of the kernel's modules only the HID ones are used (the rest is 400 MB).
  find "$SYS"/lib/modules -name '*.ko' ! -name hid.ko ! -name uhid.ko ! -name hid-generic.ko -delete
  rm -rf "$SYS"/usr/share/doc "$SYS"/usr/share/man
  rm -rf "$DEBS"
  touch "$SYS/.complete"
fi

KERNEL_IMAGE=$(ls "$SYS"/boot/vmlinuz-* | head -1)
MODULES=$(ls -d "$SYS"/lib/modules/*/kernel/drivers/hid)
export LD_LIBRARY_PATH="$SYS/usr/lib/x86_64-linux-gnu:$SYS/lib/x86_64-linux-gnu"
export QEMU_MODULE_DIR="$SYS/usr/lib/x86_64-linux-gnu/qemu"
QEMU="$SYS/usr/bin/qemu-system-x86_64"

# The guest's programs, built for this machine (glibc: their libraries go in with them). Built
# with the workspace's features, as scripts/test.sh built them already (no second build).
cargo build -q --locked --workspace --bins
PROGRAMS=("$ROOT/target/debug/countersign-vkey")

INITRAMFS="$VM/initramfs"
rm -rf "$INITRAMFS"
mkdir -p "$INITRAMFS"/{bin,modules}
cp "$SYS/bin/busybox" "$INITRAMFS/bin/"
for module in hid uhid hid-generic; do cp "$MODULES/$module.ko" "$INITRAMFS/modules/"; done
for program in "${PROGRAMS[@]}"; do
  cp "$program" "$INITRAMFS/"
  for lib in $(ldd "$program" | grep -o '/[^ ]*lib[^ ]*\.so[^ ]*'); do
    mkdir -p "$INITRAMFS$(dirname "$lib")"
    cp -L "$lib" "$INITRAMFS$lib"
  done
done
cat >"$INITRAMFS/init" <<EOF
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in hid uhid hid-generic; do /bin/busybox insmod /modules/\$m.ko || echo "insmod \$m failed"; done
failed=0
for scenario in ${SCENARIOS[*]}; do
  echo "== guest: \$scenario"
  /countersign-vkey \$scenario || { echo "== guest: \$scenario FAILED"; failed=1; }
done
echo "COUNTERSIGN_VM_EXIT=\$failed"
/bin/busybox poweroff -f
EOF
chmod +x "$INITRAMFS/init"
(cd "$INITRAMFS" && find . | cpio -o -H newc --quiet | gzip -1 >"$VM/initramfs.cpio.gz")

echo "== booting the guest (${SCENARIOS[*]})"
CONSOLE="$VM/console.log"
timeout "$TIMEOUT" "$QEMU" -L "$SYS/usr/share/qemu" -L "$SYS/usr/share/seabios" \
  -machine q35,accel=tcg -cpu max -m 512 -nographic -no-reboot -nic none \
  -kernel "$KERNEL_IMAGE" -initrd "$VM/initramfs.cpio.gz" \
  -append "console=ttyS0 quiet panic=-1 rdinit=/init" </dev/null 2>&1 \
  | tr -d '\r' | sed -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | tee "$CONSOLE" | grep -v '^$' || true
code=$(sed -n 's/^COUNTERSIGN_VM_EXIT=\([0-9]*\)$/\1/p' "$CONSOLE" | tail -1)
if [ -z "$code" ]; then
  echo "the guest did not finish within ${TIMEOUT} s (console: $CONSOLE)" >&2
  exit 1
fi
exit "$code"
