/* ocirun's exec trampoline: a freestanding program of a few hundred bytes
 * whose only job is execve(argv[1], argv + 2, envp).
 *
 * The container's process does its last exec through it, from a sealed
 * in-memory copy: at that moment /proc/self/exe is the trampoline, not the
 * host's ocirun, so a container program that resolves to /proc/self/exe
 * (or a script whose interpreter does) reaches nothing it could overwrite
 * (CVE-2019-5736). No libc: it must stay small enough to copy cheaply. */

#if defined(__x86_64__)
#define NR_write 1
#define NR_execve 59
#define NR_exit 60
static long sys3(long n, long a, long b, long c)
{
        long r;
        __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
        return r;
}
__asm__(".globl _start\n"
        "_start:\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call trampoline_main\n"
        "  hlt\n");
#elif defined(__aarch64__)
#define NR_write 64
#define NR_execve 221
#define NR_exit 93
static long sys3(long n, long a, long b, long c)
{
        register long x8 __asm__("x8") = n;
        register long x0 __asm__("x0") = a;
        register long x1 __asm__("x1") = b;
        register long x2 __asm__("x2") = c;
        __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
        return x0;
}
__asm__(".globl _start\n"
        "_start:\n"
        "  mov x0, sp\n"
        "  bl trampoline_main\n");
#else
#error "ocirun's exec trampoline supports x86_64 and aarch64"
#endif

void trampoline_main(long *sp) __attribute__((noreturn, used));

static unsigned long length(const char *s)
{
        unsigned long n = 0;
        while (s[n])
                n++;
        return n;
}

static void say(const char *s)
{
        sys3(NR_write, 2, (long) s, (long) length(s));
}

void trampoline_main(long *sp)
{
        long argc = sp[0];
        char **argv = (char **) (sp + 1);
        char **envp = argv + argc + 1;

        if (argc >= 3) {
                long r = sys3(NR_execve, (long) argv[1], (long) (argv + 2), (long) envp);
                char num[24];
                int i = (int) sizeof(num) - 1;
                unsigned long v = (unsigned long) -r;
                num[i] = '\0';
                do
                        num[--i] = (char) ('0' + v % 10);
                while ((v /= 10) && i > 0);
                say("ocirun: exec \"");
                say(argv[1]);
                say("\" failed: errno ");
                say(num + i);
                say("\n");
        }
        sys3(NR_exit, 127, 0, 0);
        for (;;)
                ;
}
