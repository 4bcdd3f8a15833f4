"""Check 7 image: the Dockerfile's stages and runtime, and the binary's shared libraries."""
import re
import subprocess

from .common import Result

# What distroless `cc` carries for a dynamically linked binary (glibc and libgcc).
DISTROLESS_CC_LIBS = {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2",
                      "librt.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


# How each recipe builds its binary: the repository's image, and a user's crate (the image
# module's recipe, whose binary is the build argument BIN).
REPOSITORY_BUILD = r"cargo build --release --locked --bin reconcilers"
CRATE_BUILD = r'cargo build --release --manifest-path "\$CRATE/Cargo\.toml" --bin "\$BIN"'


def resolve_args(text, line):
    """A FROM line's `${NAME}` replaced by the default of an `ARG NAME=...` declared before
    the first stage (the image the recipe runs on when not told otherwise)."""
    defaults = dict(re.findall(r"(?m)^ARG\s+(\w+)=(\S+)", text.split("\nFROM ", 1)[0]))
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), m.group(0)), line)


def check_image(dockerfile, binary_path, builds=REPOSITORY_BUILD):
    """Check 7: the Dockerfile builds the binary in release (`builds`, a regular expression)
    and runs it as non-root on distroless, and the binary needs no library that distroless
    `cc` lacks (no Docker engine runs here, so the image itself is not built; for a crate's
    recipe, the repository's binary stands for the crate's, built the same way)."""
    res = Result("image")
    text = dockerfile.read_text()
    stages = re.split(r"(?m)^FROM\s+", text)[1:]
    if len(stages) < 2:
        res.errors.append(f"{dockerfile}: expected a build stage and a runtime stage")
        res.summary = "not a multi-stage build"
        return res
    build, final = stages[0], stages[-1]
    base = resolve_args(text, final.split()[0])
    if not re.match(r"gcr\.io/distroless/(cc|static)[\w-]*:nonroot$", base):
        res.errors.append(f"{dockerfile}: the runtime image {base} is not distroless cc/static :nonroot")
    user = re.search(r"(?m)^USER\s+(\S+)", final)
    if not user or user.group(1).split(":")[0] in ("root", "0"):
        res.errors.append(f"{dockerfile}: the runtime stage does not run as a non-root USER")
    if not re.search(builds, build):
        res.errors.append(f"{dockerfile}: the build stage does not run {builds.replace(chr(92), '')}")
    entry = re.search(r'(?m)^ENTRYPOINT\s+\["([^"]+)"', final)
    copied = re.findall(r"(?m)^COPY\s+--from=\S+\s+\S+\s+(\S+)", final)
    if not entry or entry.group(1) not in copied:
        res.errors.append(f"{dockerfile}: ENTRYPOINT is not the binary the runtime stage copies in")
    try:
        proc = subprocess.run(["readelf", "-d", str(binary_path)], capture_output=True, text=True)
    except FileNotFoundError:
        res.errors.append("readelf is not installed (Debian: apt-get install binutils)")
        res.summary = "the binary's shared libraries were not read"
        return res
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", proc.stdout))
    if proc.returncode != 0:
        res.errors.append(f"readelf failed on {binary_path}: {proc.stderr.strip()}")
    missing = sorted(needed - DISTROLESS_CC_LIBS)
    if missing:
        res.errors.append(f"{binary_path} needs {', '.join(missing)}, which distroless cc lacks")
    res.summary = f"{dockerfile.name}: runtime {base}, binary needs {', '.join(sorted(needed)) or 'nothing'}"
    return res
