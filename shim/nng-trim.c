/* Only in the static berth-shim (see shim/meson.build): the parts of nng
 * 1.5.2 that the shim never uses, replaced so that the linker leaves them
 * out of the binary.
 *
 * The shim serves ipc:// only, but libnng.a's initialisation registers
 * every transport it was built with (tcp, tls, ws, wss), sets up its TLS
 * engine (mbedtls) and starts four name-resolver threads for tcp; and its
 * stream layer refers to the tcp, tls and websocket streams. Pulled in
 * from the archive, these were 770 KB of the 2 MB binary (nng's tcp, tls,
 * http and websocket code, mbedtls, glibc's getaddrinfo). The text of a
 * small static binary ends up resident almost whole (the kernel maps the
 * cached pages around each fault), so leaving them out, with the four
 * resolver threads, took an idle shim from 1.58 to 1.32 MB RSS.
 *
 * Defining these symbols here, in an object linked before libnng.a, means
 * the archive members that define them are never extracted: the stubs say
 * "not supported", which is what nng says for a transport it was built
 * without. If a newer nng also wanted another symbol from one of those
 * members, the link fails with a duplicate definition instead of silently
 * keeping both; if it renamed them, these stubs are simply unused.
 *
 * nng also sizes its thread pools by the number of online CPUs: 2 task
 * threads per CPU (at most 16) and one timeout thread per CPU (at most
 * 256), each with its stack and thread descriptor resident. A shim's RPC
 * handlers run on its own event loop, so nng's threads only complete I/O
 * for a few clients; with the sysconf wrapper below (linked with
 * -Wl,--wrap=sysconf; libnng.a's nni_plat_ncpu is the only caller of
 * sysconf in the binary) it sees one CPU: 2 task threads and 1 timeout
 * thread, whatever the host (on 2 CPUs: 3 threads fewer). nng 1.5.2 has
 * only compile-time settings for these (NNG_NUM_TASKQ_THREADS ...); later
 * releases take them at run time (nng_init_set_parameter, nng_init).
 *
 * Not built for dynamic (sanitizer) builds: libnng.so binds these
 * internally, so they would be dead code there. */
#include <unistd.h>

#include <nng/nng.h>

/* nng's internal prototypes (src/core, src/platform/posix) */
int nni_tls_sys_init(void);
void nni_tls_sys_fini(void);
void nni_sp_tcp_register(void);
void nni_sp_tls_register(void);
void nni_sp_ws_register(void);
void nni_sp_wss_register(void);
int nni_posix_resolv_sysinit(void);
void nni_posix_resolv_sysfini(void);
int nni_tcp_dialer_alloc(nng_stream_dialer **d, const nng_url *url);
int nni_tcp_listener_alloc(nng_stream_listener **l, const nng_url *url);
int nni_tls_dialer_alloc(nng_stream_dialer **d, const nng_url *url);
int nni_tls_listener_alloc(nng_stream_listener **l, const nng_url *url);
int nni_ws_dialer_alloc(nng_stream_dialer **d, const nng_url *url);
int nni_ws_listener_alloc(nng_stream_listener **l, const nng_url *url);

/* no TLS engine: nng_tls_config_alloc and the tls+tcp / wss schemes are
 * not linked at all */
int nni_tls_sys_init(void)
{
        return 0;
}

void nni_tls_sys_fini(void)
{
}

/* tcp://, tls+tcp://, ws://, wss:// are not registered: nng_listen and
 * nng_dial on them fail with NNG_ENOTSUP, as with an nng built without
 * them */
void nni_sp_tcp_register(void)
{
}

void nni_sp_tls_register(void)
{
}

void nni_sp_ws_register(void)
{
}

void nni_sp_wss_register(void)
{
}

/* the resolver (getaddrinfo on NNG_RESOLV_CONCURRENCY threads) serves tcp
 * only */
int nni_posix_resolv_sysinit(void)
{
        return 0;
}

void nni_posix_resolv_sysfini(void)
{
}

/* nng_stream_{dialer,listener}_alloc for the schemes left out */
int nni_tcp_dialer_alloc(nng_stream_dialer **d, const nng_url *url)
{
        return NNG_ENOTSUP;
}

int nni_tcp_listener_alloc(nng_stream_listener **l, const nng_url *url)
{
        return NNG_ENOTSUP;
}

int nni_tls_dialer_alloc(nng_stream_dialer **d, const nng_url *url)
{
        return NNG_ENOTSUP;
}

int nni_tls_listener_alloc(nng_stream_listener **l, const nng_url *url)
{
        return NNG_ENOTSUP;
}

int nni_ws_dialer_alloc(nng_stream_dialer **d, const nng_url *url)
{
        return NNG_ENOTSUP;
}

int nni_ws_listener_alloc(nng_stream_listener **l, const nng_url *url)
{
        return NNG_ENOTSUP;
}

/* See above: nng's thread pools as for one CPU. */
long __real_sysconf(int name);
long __wrap_sysconf(int name);

long __wrap_sysconf(int name)
{
        if (name == _SC_NPROCESSORS_ONLN)
                return 1;
        return __real_sysconf(name);
}
