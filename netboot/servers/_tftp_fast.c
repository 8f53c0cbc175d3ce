/*
 * The happy path of a TFTP download in C: receive the ACK of the last block sent, send the next window
 * (one DATA block in lock-step), repeat; and the TFTP server's event-loop wait around it, so the
 * interpreter is not woken for any of that.
 *
 * Why this exists: in lock-step (RFC 1350, what BIOS PXE ROMs, iPXE and pxelinux use) every block is a
 * round trip, so the server's CPU per block is the client's latency. The Python transport spent about
 * 4 us per block in the interpreter on top of the kernel's work, which left netboot at 0.7-0.8 of
 * tftpd-hpa with 20 concurrent lock-step clients; with RFC 7440 windows (OVMF asks windowsize 4) the
 * interpreter's share per window put netboot's CPU per MB above atftpd's. A first version answered the
 * ACKs in C but still woke Python for every ready socket (its epoll round, the dispatch, the state
 * machine's bookkeeping, the timer heap): 13% of the server's samples stayed in libpython and 20 lock-step
 * clients got 0.85-0.9 of atftpd. Owning the wait as well took libpython under 1% of the samples and the
 * server's CPU per MB 1.4-1.5x below tftpd-hpa's and atftpd's (docs/performance.md). This is the one case
 * that dominates a PXE boot, and nothing else is here.
 *
 * FastSet is an epoll set of two kinds of descriptor:
 *
 *   * watched ones (the request port, the wake-up socket, transfers the Python path serves: IPv6,
 *     netascii, rendered files): wait() only reports that they are readable;
 *   * fast transfers: a socket, its client, its open file. wait() serves them itself and returns only
 *     when Python has work: a watched descriptor is ready, a transfer handed a datagram back, or the
 *     timeout (Python's next retransmission deadline) passed. Between answers it polls for a few tens
 *     of microseconds before it sleeps (spin_wait), so a client on the same host is not paced by
 *     cross-CPU wake-ups.
 *
 * The contract with the protocol, kept deliberately narrow so that TFTP still lives in one place
 * (netboot/protocol/tftp.py, ReadTransfer):
 *
 *   * A transfer is armed (arm()) only while ReadTransfer.fast_path_position() says DATA is flowing and
 *     gives the last block sent (``sent``); after every step of the state machine the transport arms or
 *     disarms it again.
 *   * An armed transfer answers a datagram itself only when it is exactly the expected case: from the
 *     client's address and port, opcode ACK, for block ``sent`` (16-bit wire number), which is not the
 *     last block of the file. Its one correct answer is the next window: blocks ``sent + 1`` up to
 *     ``windowsize`` of them, never past the last, read with one pread() from the file; the same bytes
 *     ReadTransfer._send_window would build, sent the same way as the Python transport's tftp_send.send_gso
 *     (first datagram alone, the rest cut by the kernel with UDP GSO, datagram by datagram where the
 *     kernel refuses GSO).
 *   * Any other datagram (stranger, ERROR, duplicate ACK, an ACK inside the window, ACK of the last
 *     block, a short read because the file changed, anything while disarmed) is handed back with its
 *     sender, and the transport feeds it to ReadTransfer.receive() as if the fast path did not exist.
 *   * Before the state machine runs for any reason (a handed-back datagram, a retransmission deadline,
 *     shutdown), the transport calls take(): the last ACK answered here and when, which
 *     ReadTransfer.fast_path_acked() records exactly as _on_ack would have. A deadline that passed in
 *     Python's heap while this loop kept the transfer moving is therefore pushed back, not fired.
 *   * Send errors are ignored, as in the Python transport: a lost DATA is repaired by retransmission.
 *
 * The GIL is released while waiting and serving (the daemon's DHCP and HTTP threads keep running). A set
 * belongs to one TftpServer and is used from its loop thread only; a call from elsewhere while wait()
 * runs is refused, never a race.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>
#include <string.h>
#include <structmember.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define TFTP_DATA 3
#define TFTP_ACK 4

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* <linux/udp.h>, Linux 4.18+ */
#endif
/* Segments and bytes per GSO send: the kernel's UDP_MAX_SEGMENTS and one IP packet's worth (tftp.py). */
#define GSO_MAX_SEGMENTS 64
#define GSO_MAX_BYTES 65000

static int
as_long_long(PyObject *obj, long long *out, const char *what)
{
    long long value = PyLong_AsLongLong(obj);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (value < 0) {
        PyErr_Format(PyExc_ValueError, "%s must not be negative", what);
        return -1;
    }
    *out = value;
    return 0;
}

/* Errors that mean "no GSO on this path" (old kernel, no checksum offload, segment over the MTU); the
 * same set as tftp.py's _GSO_REFUSED, exported as GSO_REFUSED below. */
static int
gso_refused(int err)
{
    return err == EINVAL || err == EIO || err == EOPNOTSUPP || err == ENOPROTOOPT || err == EMSGSIZE;
}

static ssize_t
send_retrying(int fd, struct msghdr *msg)
{
    ssize_t sent;
    do
        sent = sendmsg(fd, msg, 0);
    while (sent < 0 && errno == EINTR);
    return sent;
}

/*
 * DATA blocks ``first`` .. ``first + count - 1`` whose payloads lie back to back from ``out + 4``
 * (``length`` bytes, every block ``blksize`` long but the file's last); ``out[0..3]`` is room for the
 * first block's header, so lock-step is one plain ``sendto`` of a contiguous datagram. The rest go out
 * as header/payload iovecs, so the file data is copied once, by the kernel. Clears ``*gso`` for good
 * when the kernel refuses GSO.
 */
static void
send_window(int fd, struct sockaddr_in *to, unsigned char *out, size_t length, long long first,
            long long count, size_t blksize, int *gso)
{
    const unsigned char *data = out + 4;
    unsigned char headers[GSO_MAX_SEGMENTS][4];
    struct iovec iov[2 * GSO_MAX_SEGMENTS];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } control;
    struct msghdr msg;
    long long per_call = (long long)(GSO_MAX_BYTES / (blksize + 4));
    if (per_call > GSO_MAX_SEGMENTS)
        per_call = GSO_MAX_SEGMENTS;
    if (per_call <= 1)
        *gso = 0; /* the Python transport's "segments too large to batch" */

    /* The head alone, contiguous: it wakes the receiver while the kernel cuts the rest. */
    size_t head = length < blksize ? length : blksize;
    out[0] = 0;
    out[1] = TFTP_DATA;
    out[2] = (unsigned char)((first >> 8) & 0xFF);
    out[3] = (unsigned char)(first & 0xFF);
    while (sendto(fd, out, head + 4, 0, (struct sockaddr *)to, sizeof *to) < 0 && errno == EINTR)
        ;
    long long i = 1;
    while (i < count) {
        /* The tail alone when it is one datagram, without GSO one at a time; otherwise up to per_call
         * segments in one send. */
        long long n = 1;
        int batch = *gso && count - i > 1;
        if (batch)
            n = count - i < per_call ? count - i : per_call;
        for (long long k = 0; k < n; k++) {
            long long block = first + i + k;
            size_t offset = (size_t)(i + k) * blksize;
            size_t size = length - offset < blksize ? length - offset : blksize;
            headers[k][0] = 0;
            headers[k][1] = TFTP_DATA;
            headers[k][2] = (unsigned char)((block >> 8) & 0xFF);
            headers[k][3] = (unsigned char)(block & 0xFF);
            iov[2 * k].iov_base = headers[k];
            iov[2 * k].iov_len = 4;
            iov[2 * k + 1].iov_base = (void *)(data + offset);
            iov[2 * k + 1].iov_len = size;
        }
        memset(&msg, 0, sizeof msg);
        msg.msg_name = to;
        msg.msg_namelen = sizeof *to;
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)(2 * n);
        if (batch) {
            memset(&control, 0, sizeof control);
            msg.msg_control = control.buf;
            msg.msg_controllen = sizeof control.buf;
            struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
            cmsg->cmsg_level = SOL_UDP;
            cmsg->cmsg_type = UDP_SEGMENT;
            cmsg->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t segment = (uint16_t)(blksize + 4);
            memcpy(CMSG_DATA(cmsg), &segment, sizeof segment);
        }
        if (send_retrying(fd, &msg) < 0 && batch && gso_refused(errno)) {
            *gso = 0; /* resend this batch datagram by datagram, and everything after it */
            continue;
        }
        i += n; /* other errors are loss; the retransmission timer repairs them */
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* FastSet: the transfers whose happy path runs here, and the epoll set their sockets wait in.      */
/* ------------------------------------------------------------------------------------------------ */

/* Events taken per epoll_wait: also the most datagrams one wait() can hand back. */
#define MAX_EVENTS 64

/* One descriptor in the set: a transfer, or (``watched``) anything else the loop waits for (the
 * listener, the wake-up socket, transfers Python serves), whose readiness wait() only reports. A
 * transfer's socket is in the set from its first datagram to its last; while it is not armed (OACK
 * pending, last block sent, ...) every datagram goes back to Python. */
typedef struct {
    int sock; /* -1: free slot */
    int watched;
    int file;
    struct sockaddr_in client;
    long long size;
    int armed;
    long long blksize, windowsize, sent, last; /* ReadTransfer.fast_path_position() when armed */
    int gso;
    long long acked;  /* the last ACK answered here since take(), or -1 */
    double progress;  /* CLOCK_MONOTONIC seconds when it was answered (= Python's time.monotonic()) */
    int eager_pause;  /* wake-ups left without eager reads */
} Entry;

/* The transfers of every FastSet that shares it: the loops of one server port. A loop spins only while
 * this is at most its spin_limit, so with several loops a second client anywhere stops the spinning. */
typedef struct {
    PyObject_HEAD
    int value; /* read and written with __atomic builtins: the loops run in parallel, GIL released */
} TransferCount;

static PyMemberDef count_members[] = {
    {"value", T_INT, offsetof(TransferCount, value), READONLY, "transfers in the FastSets that share it"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject TransferCountType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netboot.servers._tftp_fast.TransferCount",
    .tp_basicsize = sizeof(TransferCount),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TransferCount()\n\nTransfers in every FastSet built with it (FastSet(..., count=)).",
    .tp_new = PyType_GenericNew,
    .tp_members = count_members,
};

typedef struct {
    PyObject_HEAD
    int epfd;           /* -1 once closed */
    int busy;           /* inside wait() with the GIL released: every other method refuses */
    Entry *entries;     /* indexed by socket descriptor */
    Py_ssize_t capacity;
    unsigned char *sbuf; /* one window: 4 header bytes + windowsize * blksize */
    size_t sbuf_len;
    unsigned char *rbuf; /* MAX_EVENTS slots of reply_size bytes: one per datagram handed back */
    size_t reply_size;
    int eager_rounds, eager_backoff;
    double spin;        /* seconds to poll without sleeping after answering an ACK; 0: never */
    int spin_pause;     /* waits left without spinning, after a spin that found nothing */
    int spin_backoff;   /* the next miss's pause: eager_backoff, doubled per miss in a row */
    int spin_limit;     /* spin only while count holds at most this many transfers */
    int transfers;      /* transfers in this set (add() minus remove(); watched descriptors not counted) */
    TransferCount *count; /* this set's transfers and those of the sets that share it */
    long long answered, handed_back, spins_caught, spins_missed;
} FastSet;

static Entry *
find_entry(FastSet *self, long long fd)
{
    if (fd < 0 || fd >= self->capacity || self->entries[fd].sock != fd)
        return NULL;
    return &self->entries[fd];
}

static int
usable(FastSet *self)
{
    if (self->epfd < 0) {
        PyErr_SetString(PyExc_ValueError, "FastSet is closed");
        return 0;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "FastSet is used from two threads");
        return 0;
    }
    return 1;
}

static Entry *
known_entry(FastSet *self, PyObject *fd_obj)
{
    long long fd;
    if (!usable(self) || as_long_long(fd_obj, &fd, "sock_fd") < 0)
        return NULL;
    Entry *e = find_entry(self, fd);
    if (e == NULL)
        PyErr_Format(PyExc_KeyError, "descriptor %lld is not in this FastSet", fd);
    return e;
}

/* The next window after an ACK of e->sent: one pread, then send_window. 0 when the file came up short
 * (it shrank): Python's state machine then sees that ACK and ends the transfer. */
static int
answer(FastSet *self, Entry *e)
{
    long long first = e->sent + 1;
    long long end = first + e->windowsize < e->last + 1 ? first + e->windowsize : e->last + 1;
    long long offset = (first - 1) * e->blksize;
    long long want = (end - first) * e->blksize;
    size_t length = (size_t)(e->size - offset < want ? e->size - offset : want);
    size_t got = 0;
    while (got < length) {
        ssize_t r = pread(e->file, self->sbuf + 4 + got, length - got, (off_t)(offset + (long long)got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got != length)
        return 0;
    e->acked = e->sent;
    e->sent = end - 1;
    send_window(e->sock, &e->client, self->sbuf, length, first, end - first, (size_t)e->blksize, &e->gso);
    self->answered++;
    return 1;
}

static double
monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A ready transfer: its datagram, then, while the client keeps up, eager reads of the next ones (the
 * transport's policy, EAGER_ROUNDS / EAGER_BACKOFF in tftp.py). Returns the length of a datagram to hand
 * back (left in ``in``, its sender in ``from``), or -1. */
static ssize_t
serve(FastSet *self, Entry *e, double now, unsigned char *in, struct sockaddr_in *from)
{
    int budget = e->eager_pause ? 1 : 1 + self->eager_rounds;
    int consumed = 0, dry = 0;
    ssize_t back = -1;
    while (budget > 0) {
        socklen_t fromlen = sizeof *from;
        ssize_t n = recvfrom(e->sock, in, self->reply_size, MSG_DONTWAIT, (struct sockaddr *)from, &fromlen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            dry = 1; /* EAGAIN, or an error Python's recv would also treat as "nothing there" */
            break;
        }
        consumed++;
        budget--;
        if (!e->armed || fromlen < (socklen_t)sizeof *from || from->sin_family != AF_INET ||
            from->sin_addr.s_addr != e->client.sin_addr.s_addr || from->sin_port != e->client.sin_port ||
            n < 4 || in[0] != 0 || in[1] != TFTP_ACK || ((in[2] << 8) | in[3]) != (e->sent & 0xFFFF) ||
            e->sent >= e->last || !answer(self, e)) {
            back = n;
            break;
        }
        e->progress = now;
    }
    if (e->eager_pause)
        e->eager_pause--;
    else if (dry && consumed)
        e->eager_pause = self->eager_backoff;
    return back;
}

/* Most waits a run of missed spins pauses spinning for. */
#define SPIN_BACKOFF_MAX 1024

/* Poll the set without sleeping for up to ``spin`` seconds (never past ``deadline``) after the loop
 * answered an ACK: a client on the same host or a fast LAN sends its next ACK within tens of
 * microseconds, and finding it awake saves the two cross-CPU wake-ups of a sleeping loop (an IPI and an
 * idle exit each, which on a VM cost more than the round trip itself: a windowsize-4 download from a
 * client on the other CPU ran about twice as fast spinning, docs/performance.md). Between polls it
 * yields the CPU to any runnable task: on a busy host, or with the client on this CPU, the spin waits
 * its turn instead of delaying the ACK it waits for. A spin that finds nothing (a client across a real
 * network, or one that went quiet) stops spinning for eager_backoff waits, twice as many after each
 * further miss in a row (up to SPIN_BACKOFF_MAX), so a client that is never that fast costs a dozen
 * spins per download; a spin that finds work resets the pause. The caller spins only while the shared
 * TransferCount (every loop of the port) is at most spin_limit: with more clients a spinning CPU looks
 * busy to the scheduler, which then queues the clients it wakes elsewhere (2, 4 and 20 lock-step clients
 * ran faster and cheaper without the spin, docs/performance.md). Returns epoll_wait()'s result, or 0
 * when the caller should sleep. */
static int
spin_wait(FastSet *self, struct epoll_event *events, double deadline)
{
    if (self->spin_pause) {
        self->spin_pause--;
        return 0;
    }
    double now = monotonic(), until = now + self->spin < deadline ? now + self->spin : deadline;
    if (until <= now)
        return 0; /* no time left before the caller's deadline: not a spin, not a miss */
    do {
        int n = epoll_wait(self->epfd, events, MAX_EVENTS, 0);
        if (n != 0) {
            if (n > 0) {
                self->spins_caught++;
                self->spin_backoff = self->eager_backoff;
            }
            return n;
        }
        sched_yield(); /* a runnable task on this CPU (the client itself, on a busy host) goes first */
    } while (monotonic() < until);
    self->spins_missed++;
    self->spin_pause = self->spin_backoff;
    self->spin_backoff *= 2;
    if (self->spin_backoff > SPIN_BACKOFF_MAX)
        self->spin_backoff = SPIN_BACKOFF_MAX;
    return 0;
}

PyDoc_STRVAR(wait_doc,
"wait(timeout) -> (ready, handed_back)\n"
"\n"
"Wait up to ``timeout`` seconds (negative: until something happens) and serve every transfer whose\n"
"socket is ready on the way: each expected ACK is answered with the next window here, and the wait goes\n"
"on. Returns once the loop has work: ``ready`` lists the watched descriptors that are readable,\n"
"``handed_back`` the datagrams that were anything but an expected ACK, as (sock_fd, datagram,\n"
"(ip, port)), for ReadTransfer.receive() (call take() for that socket first). Both are empty after\n"
"the timeout or a signal.");

static PyObject *
fastset_wait(FastSet *self, PyObject *timeout_obj)
{
    double timeout = PyFloat_AsDouble(timeout_obj);
    if (timeout == -1.0 && PyErr_Occurred())
        return NULL;
    if (!usable(self))
        return NULL;
    struct epoll_event events[MAX_EVENTS];
    int ready_fd[MAX_EVENTS], back_sock[MAX_EVENTS];
    ssize_t back_len[MAX_EVENTS];
    struct sockaddr_in back_from[MAX_EVENTS];
    int nready = 0, nback = 0, flowing = 0;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    double deadline = timeout >= 0 ? monotonic() + timeout : HUGE_VAL;
    for (;;) {
        int n = flowing && self->spin > 0 &&
                        __atomic_load_n(&self->count->value, __ATOMIC_RELAXED) <= self->spin_limit
                    ? spin_wait(self, events, deadline) : 0;
        if (n == 0) {
            int ms = -1;
            if (timeout >= 0) {
                double left = deadline - monotonic();
                ms = left <= 0 ? 0 : (int)(left * 1000.0) + 1; /* never wake before the deadline */
            }
            n = epoll_wait(self->epfd, events, MAX_EVENTS, ms);
        }
        if (n <= 0)
            break; /* the timeout, or EINTR: Python runs its signal handlers and timers */
        double now = monotonic();
        for (int i = 0; i < n; i++) {
            Entry *e = find_entry(self, events[i].data.fd);
            if (e == NULL)
                continue;
            if (e->watched) {
                ready_fd[nready++] = e->sock;
                continue;
            }
            long long answered = self->answered;
            ssize_t len = serve(self, e, now, self->rbuf + (size_t)nback * self->reply_size,
                                &back_from[nback]);
            flowing |= self->answered != answered;
            if (len >= 0) {
                back_sock[nback] = e->sock;
                back_len[nback] = len;
                nback++;
            }
        }
        if (nready || nback || (timeout >= 0 && now >= deadline))
            break;
    }
    Py_END_ALLOW_THREADS
    self->busy = 0;
    self->handed_back += nback;

    PyObject *ready = PyList_New(nready), *back = PyList_New(nback);
    if (ready == NULL || back == NULL)
        goto fail;
    for (int i = 0; i < nready; i++) {
        PyObject *fd = PyLong_FromLong(ready_fd[i]);
        if (fd == NULL)
            goto fail;
        PyList_SET_ITEM(ready, i, fd);
    }
    for (int i = 0; i < nback; i++) {
        char host[INET_ADDRSTRLEN];
        if (inet_ntop(AF_INET, &back_from[i].sin_addr, host, sizeof host) == NULL)
            host[0] = '\0';
        PyObject *item = Py_BuildValue("(iy#(si))", back_sock[i],
                                       (const char *)(self->rbuf + (size_t)i * self->reply_size),
                                       (Py_ssize_t)back_len[i], host, (int)ntohs(back_from[i].sin_port));
        if (item == NULL)
            goto fail;
        PyList_SET_ITEM(back, i, item);
    }
    return Py_BuildValue("(NN)", ready, back);
fail:
    Py_XDECREF(ready);
    Py_XDECREF(back);
    return NULL;
}

/* A new slot for ``fd`` in the epoll set (zeroed, not armed); NULL with an exception set. */
static Entry *
new_entry(FastSet *self, long long fd)
{
    if (fd > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "descriptor out of range");
        return NULL;
    }
    if (find_entry(self, fd) != NULL) {
        PyErr_Format(PyExc_KeyError, "descriptor %lld is already in this FastSet", fd);
        return NULL;
    }
    if (fd >= self->capacity) {
        Py_ssize_t capacity = self->capacity ? self->capacity : 64;
        while (capacity <= fd)
            capacity *= 2;
        Entry *grown = PyMem_RawRealloc(self->entries, (size_t)capacity * sizeof(Entry));
        if (grown == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        for (Py_ssize_t i = self->capacity; i < capacity; i++)
            grown[i].sock = -1;
        self->entries = grown;
        self->capacity = capacity;
    }
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = EPOLLIN;
    event.data.fd = (int)fd;
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, (int)fd, &event) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    Entry *e = &self->entries[fd];
    memset(e, 0, sizeof *e);
    e->sock = (int)fd;
    e->acked = -1;
    return e;
}

PyDoc_STRVAR(watch_doc,
"watch(fd) -> None\n\nWait for ``fd`` too; wait() reports it in ``ready`` and never reads it.");

static PyObject *
fastset_watch(FastSet *self, PyObject *fd_obj)
{
    long long fd;
    if (!usable(self) || as_long_long(fd_obj, &fd, "fd") < 0)
        return NULL;
    Entry *e = new_entry(self, fd);
    if (e == NULL)
        return NULL;
    e->watched = 1;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(add_doc,
"add(sock_fd, file_fd, client_ip, client_port, size, window_bytes) -> None\n"
"\n"
"Take a transfer's socket into the set (not armed yet: its datagrams all come back from wait()).\n"
"``client_ip`` is 4 packed bytes; ``size`` the file's; ``window_bytes`` its largest window.");

static PyObject *
fastset_add(FastSet *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "add() takes 6 arguments (%zd given)", nargs);
        return NULL;
    }
    long long sock_fd, file_fd, port, size, window_bytes;
    if (!usable(self) || as_long_long(args[0], &sock_fd, "sock_fd") ||
        as_long_long(args[1], &file_fd, "file_fd") || as_long_long(args[3], &port, "client_port") ||
        as_long_long(args[4], &size, "size") || as_long_long(args[5], &window_bytes, "window_bytes"))
        return NULL;
    if (!PyBytes_Check(args[2]) || PyBytes_GET_SIZE(args[2]) != 4) {
        PyErr_SetString(PyExc_TypeError, "client_ip must be 4 packed bytes (socket.inet_aton)");
        return NULL;
    }
    if (port > 65535 || file_fd > INT32_MAX || window_bytes > (1LL << 30)) {
        PyErr_SetString(PyExc_ValueError, "add(): port, descriptor or window out of range");
        return NULL;
    }
    if ((size_t)window_bytes + 4 > self->sbuf_len) {
        unsigned char *grown = PyMem_RawRealloc(self->sbuf, (size_t)window_bytes + 4);
        if (grown == NULL)
            return PyErr_NoMemory();
        self->sbuf = grown;
        self->sbuf_len = (size_t)window_bytes + 4;
    }
    Entry *e = new_entry(self, sock_fd);
    if (e == NULL)
        return NULL;
    e->file = (int)file_fd;
    e->client.sin_family = AF_INET;
    memcpy(&e->client.sin_addr, PyBytes_AS_STRING(args[2]), 4);
    e->client.sin_port = htons((uint16_t)port);
    e->size = size;
    e->gso = 1;
    self->transfers++;
    __atomic_add_fetch(&self->count->value, 1, __ATOMIC_RELAXED);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(arm_doc,
"arm(sock_fd, sent, last, blksize, windowsize, gso) -> None\n"
"\n"
"ReadTransfer.fast_path_position() is (sent, last, blksize, windowsize): answer the ACK of ``sent`` here.\n"
"``gso`` false once the kernel refused UDP GSO for this transfer.");

static PyObject *
fastset_arm(FastSet *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "arm() takes 6 arguments (%zd given)", nargs);
        return NULL;
    }
    long long sent, last, blksize, windowsize;
    Entry *e = known_entry(self, args[0]);
    if (e != NULL && e->watched) {
        PyErr_SetString(PyExc_ValueError, "arm(): a watched descriptor is not a transfer");
        return NULL;
    }
    if (e == NULL || as_long_long(args[1], &sent, "sent") || as_long_long(args[2], &last, "last") ||
        as_long_long(args[3], &blksize, "blksize") || as_long_long(args[4], &windowsize, "windowsize"))
        return NULL;
    int gso = PyObject_IsTrue(args[5]);
    if (gso < 0)
        return NULL;
    if (blksize < 8 || blksize > 65464 || windowsize < 1 || windowsize > 65535 || sent > last ||
        (size_t)(windowsize * blksize) + 4 > self->sbuf_len) {
        PyErr_SetString(PyExc_ValueError, "arm(): blksize, windowsize or position out of range");
        return NULL;
    }
    if (e->acked >= 0) {
        PyErr_SetString(PyExc_RuntimeError, "arm() before take(): answered ACKs would be lost");
        return NULL;
    }
    e->armed = 1;
    e->sent = sent;
    e->last = last;
    e->blksize = blksize;
    e->windowsize = windowsize;
    e->gso = gso;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(disarm_doc, "disarm(sock_fd) -> None\n\nEvery datagram of this transfer goes back to Python.");

static PyObject *
fastset_disarm(FastSet *self, PyObject *fd_obj)
{
    Entry *e = known_entry(self, fd_obj);
    if (e == NULL)
        return NULL;
    e->armed = 0;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(take_doc,
"take(sock_fd) -> (acked, progress, gso)\n"
"\n"
"What happened here since the last take(): the last ACK answered (-1: none) and when, on the\n"
"time.monotonic() clock, for ReadTransfer.fast_path_acked(); and whether GSO is still usable.");

static PyObject *
fastset_take(FastSet *self, PyObject *fd_obj)
{
    Entry *e = known_entry(self, fd_obj);
    if (e == NULL)
        return NULL;
    long long acked = e->acked;
    e->acked = -1;
    return Py_BuildValue("(LdO)", acked, e->progress, e->gso ? Py_True : Py_False);
}

PyDoc_STRVAR(remove_doc, "remove(fd) -> None\n\nForget a transfer or watched descriptor; call before closing it.");

static PyObject *
fastset_remove(FastSet *self, PyObject *fd_obj)
{
    Entry *e = known_entry(self, fd_obj);
    if (e == NULL)
        return NULL;
    int fd = e->sock;
    e->sock = -1;
    if (!e->watched) {
        self->transfers--;
        __atomic_sub_fetch(&self->count->value, 1, __ATOMIC_RELAXED);
    }
    if (epoll_ctl(self->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static void
release(FastSet *self)
{
    if (self->count != NULL) /* transfers never removed leave the shared count too */
        __atomic_sub_fetch(&self->count->value, self->transfers, __ATOMIC_RELAXED);
    self->transfers = 0;
    if (self->epfd >= 0)
        close(self->epfd);
    self->epfd = -1;
    PyMem_RawFree(self->entries);
    PyMem_RawFree(self->sbuf);
    PyMem_RawFree(self->rbuf);
    self->entries = NULL;
    self->sbuf = self->rbuf = NULL;
    self->capacity = 0;
    self->sbuf_len = 0;
}

static PyObject *
fastset_close(FastSet *self, PyObject *Py_UNUSED(ignored))
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "FastSet is used from two threads");
        return NULL;
    }
    release(self);
    Py_RETURN_NONE;
}

static int
fastset_init(FastSet *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"reply_size", "eager_rounds", "eager_backoff", "spin", "spin_limit", "count",
                               NULL};
    Py_ssize_t reply_size;
    int eager_rounds, eager_backoff, spin_limit = INT_MAX;
    double spin = 0.0;
    PyObject *count = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nii|diO", keywords, &reply_size, &eager_rounds,
                                     &eager_backoff, &spin, &spin_limit, &count))
        return -1;
    if (count == Py_None)
        count = NULL;
    if (count != NULL && !PyObject_TypeCheck(count, &TransferCountType)) {
        PyErr_SetString(PyExc_TypeError, "FastSet(): count must be a TransferCount");
        return -1;
    }
    if (reply_size < 4 || reply_size > 65536 || eager_rounds < 0 || eager_backoff < 0 ||
        eager_backoff > SPIN_BACKOFF_MAX || !(spin >= 0.0) || spin > 0.01 || spin_limit < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "FastSet(): reply_size, eager_rounds, eager_backoff, spin or spin_limit out of range");
        return -1;
    }
    if (count == NULL)
        count = PyObject_CallNoArgs((PyObject *)&TransferCountType); /* a count of its own */
    else
        Py_INCREF(count);
    if (count == NULL)
        return -1;
    release(self); /* a set initialised again: its old transfers leave its old count */
    Py_XSETREF(self->count, (TransferCount *)count);
    self->rbuf = PyMem_RawMalloc((size_t)reply_size * MAX_EVENTS);
    if (self->rbuf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->reply_size = (size_t)reply_size;
    self->eager_rounds = eager_rounds;
    self->eager_backoff = eager_backoff;
    self->spin = spin;
    self->spin_limit = spin_limit;
    self->spin_pause = 0;
    self->spin_backoff = eager_backoff;
    return 0;
}

static PyObject *
fastset_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    FastSet *self = (FastSet *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->epfd = -1;
    return (PyObject *)self;
}

static void
fastset_dealloc(FastSet *self)
{
    release(self);
    Py_CLEAR(self->count);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef fastset_methods[] = {
    {"wait", (PyCFunction)fastset_wait, METH_O, wait_doc},
    {"watch", (PyCFunction)fastset_watch, METH_O, watch_doc},
    {"add", (PyCFunction)(void (*)(void))fastset_add, METH_FASTCALL, add_doc},
    {"arm", (PyCFunction)(void (*)(void))fastset_arm, METH_FASTCALL, arm_doc},
    {"disarm", (PyCFunction)fastset_disarm, METH_O, disarm_doc},
    {"take", (PyCFunction)fastset_take, METH_O, take_doc},
    {"remove", (PyCFunction)fastset_remove, METH_O, remove_doc},
    {"close", (PyCFunction)fastset_close, METH_NOARGS, "Close the epoll descriptor and free the buffers."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef fastset_members[] = {
    {"answered", T_LONGLONG, offsetof(FastSet, answered), READONLY, "ACKs answered here, in total"},
    {"handed_back", T_LONGLONG, offsetof(FastSet, handed_back), READONLY, "datagrams wait() handed back"},
    {"spin", T_DOUBLE, offsetof(FastSet, spin), READONLY, "seconds polled after an answer before sleeping"},
    {"spin_limit", T_INT, offsetof(FastSet, spin_limit), READONLY,
     "the most transfers in the set for which wait() spins"},
    {"transfers", T_INT, offsetof(FastSet, transfers), READONLY, "transfers in the set (add() minus remove())"},
    {"spins_caught", T_LONGLONG, offsetof(FastSet, spins_caught), READONLY,
     "spins that found a ready descriptor before their time was up"},
    {"spins_missed", T_LONGLONG, offsetof(FastSet, spins_missed), READONLY,
     "spins that found nothing (each pauses spinning: eager_backoff waits, doubled per miss in a row)"},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(fastset_doc,
"FastSet(reply_size, eager_rounds, eager_backoff, spin=0.0, spin_limit=no limit, count=its own)\n"
"\n"
"The TFTP server's event loop wait: an epoll set of the transfers whose download happy path runs in C\n"
"and of the descriptors Python handles (watch()). wait() answers the happy path itself and returns\n"
"only when Python has work. Use from one thread.");

static PyTypeObject FastSetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "netboot.servers._tftp_fast.FastSet",
    .tp_basicsize = sizeof(FastSet),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = fastset_doc,
    .tp_new = fastset_new,
    .tp_init = (initproc)fastset_init,
    .tp_dealloc = (destructor)fastset_dealloc,
    .tp_methods = fastset_methods,
    .tp_members = fastset_members,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_tftp_fast",
    "The happy path of a TFTP download (ACK in, next window out) and the wait around it, without the "
    "interpreter; see FastSet.",
    -1,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};

/* The constants this loop shares with netboot/servers/tftp.py, exported so a test can hold the two to the
 * same values. */
PyMODINIT_FUNC
PyInit__tftp_fast(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *refused = Py_BuildValue("(iiiii)", EINVAL, EIO, EOPNOTSUPP, ENOPROTOOPT, EMSGSIZE);
    if (PyModule_AddIntConstant(m, "UDP_SEGMENT", UDP_SEGMENT) < 0 ||
        PyModule_AddIntConstant(m, "GSO_MAX_SEGMENTS", GSO_MAX_SEGMENTS) < 0 ||
        PyModule_AddIntConstant(m, "GSO_MAX_BYTES", GSO_MAX_BYTES) < 0 || refused == NULL ||
        PyModule_AddObject(m, "GSO_REFUSED", refused) < 0) {
        Py_XDECREF(refused);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddType(m, &FastSetType) < 0 || PyModule_AddType(m, &TransferCountType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
