/* berth's hello-world: the only file of the image that packaging/hello/
 * mkimage.py builds and the Debian package ships as hello-world.tar.
 *
 * It writes one message with write(2) and exits 0. Linked statically with
 * -Os -s (see packaging/meson.build) so the image has no libc of its own
 * and nothing but this binary. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

static const char message[] =
        "\n"
        "Hello from berth!\n"
        "This message shows that your installation appears to be working correctly.\n"
        "\n"
        "To print it, this is the path your command took:\n"
        " 1. The docker CLI sent Docker Engine API requests over a unix socket to\n"
        "    berth-engine (create, attach, wait, start).\n"
        " 2. berth-engine turned the container's config and the image's config into\n"
        "    an OCI runtime spec and asked berth-supervisor for the container and\n"
        "    its task (nng + protobuf-c).\n"
        " 3. berth-supervisor found the \"hello-world\" image in its content store,\n"
        "    prepared an overlay snapshot of its layer, wrote an OCI bundle and\n"
        "    started a berth-shim for this one container.\n"
        " 4. berth-shim took the container's stdio, ran ocirun, and is the one that\n"
        "    streams this text to your terminal and keeps the exit code - it\n"
        "    outlives both daemons, which is what lets them restart underneath.\n"
        " 5. ocirun built the namespaces, the cgroup and the root filesystem, dropped\n"
        "    capabilities, then exec'd /hello - and exited itself.\n"
        " 6. The Linux kernel ran this statically linked program, with no libc in\n"
        "    the image and no other file.\n"
        "\n"
        "To try something more ambitious, run a shell in a container:\n"
        " $ docker run -it --rm busybox sh\n"
        "\n"
        "See what else is there, or drive the supervisor directly:\n"
        " $ docker ps -a; docker images; docker info\n"
        " $ berth-ctr images ls; berth-ctr tasks ls\n"
        "\n"
        "ocirun is a drop-in for runc: containerd, dockerd (--add-runtime) and\n"
        "podman (--runtime) can use it too.\n"
        "\n";

int main(void)
{
        const char *p = message;
        size_t left = sizeof(message) - 1;

        while (left > 0) {
                ssize_t n = write(STDOUT_FILENO, p, left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return 1;
                p += n;
                left -= (size_t) n;
        }
        return 0;
}
