/*
 * The happy path of a TFTP download in C: receive the ACK of the last block sent, send the next window
 * (one DATA block in lock-step), repeat.
 *
 * Why this exists: in lock-step (RFC 1350, what BIOS PXE ROMs, iPXE and pxelinux use) every block is a
 * round trip, so the server's CPU per block is the client's latency. The Python transport spent about
 * 4 us per block in the interpreter on top of the kernel's work, which left netboot at 0.7-0.8 of
 * tftpd-hpa with 20 concurrent lock-step clients; with RFC 7440 windows (OVMF asks windowsize 4) the
 * interpreter's share per window put netboot's CPU per MB above atftpd's (docs/performance.md). This
 * loop removes the interpreter from the one case that dominates a PXE boot, and nothing else.
 *
 * The contract, kept deliberately narrow so that the protocol still lives in one place
 * (netboot/protocol/tftp.py, ReadTransfer):
 *
 *   * Python only calls pump() while ReadTransfer.fast_path_position() says DATA is flowing and gives
 *     the last block sent (``sent``), over IPv4, from a regular file.
 *   * pump() handles a datagram itself only when it is exactly the expected case: from the client's
 *     address and port, opcode ACK, for block ``sent`` (16-bit wire number), which is not the last block
 *     of the file. Its one correct answer is the next window: blocks ``sent + 1`` up to ``windowsize``
 *     of them, never past the last, read with one pread() from the file; the same bytes
 *     ReadTransfer._send_window would build, sent the same way as the Python transport's _send_gso
 *     (first datagram alone, the rest cut by the kernel with UDP GSO, datagram by datagram where the
 *     kernel refuses GSO).
 *   * Any other datagram (stranger, ERROR, duplicate ACK, an ACK inside the window, ACK of the last
 *     block, a short read because the file changed) is left for Python: pump() stops and returns its
 *     length and sender, and the transport feeds it to ReadTransfer.receive() as if the fast path did
 *     not exist. After pump() returns, ReadTransfer.fast_path_acked() records the ACKs handled here
 *     exactly as _on_ack would have.
 *   * Send errors are ignored, as in the Python transport: a lost DATA is repaired by retransmission.
 *
 * The GIL is released for the whole loop (the daemon's DHCP and HTTP threads keep running); the buffers
 * are the caller's, one pair per TftpServer, so two servers in two threads never share one.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
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

PyDoc_STRVAR(pump_doc,
"pump(sock_fd, file_fd, client_ip, client_port, blksize, windowsize, size, sent, last, rounds, gso,\n"
"     rbuf, sbuf) -> (handled, acked, other_length, other_address, gso)\n"
"\n"
"Receive up to ``rounds`` datagrams on ``sock_fd`` without blocking. Each ACK from ``client_ip``\n"
"(4 packed bytes) and ``client_port`` for block ``sent`` < ``last`` is answered with the next window\n"
"(up to ``windowsize`` DATA blocks of ``blksize`` bytes from ``file_fd``, ``size`` bytes long) and\n"
"moves ``sent`` to that window's last block; ``acked`` is the last ACK answered, or -1.\n"
"Stops at the first datagram that is anything else and returns its length (it is left in ``rbuf``)\n"
"and sender ``(ip, port)``; otherwise ``other_length`` is -1 and ``other_address`` None.\n"
"``handled`` counts the datagrams consumed, the other one included: fewer than ``rounds`` with no\n"
"other datagram means the socket ran dry. ``gso`` says whether UDP GSO may be used, and comes back\n"
"false once the kernel refused it. ``sbuf`` must hold ``windowsize * blksize + 4`` bytes.");

static PyObject *
pump(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 13) {
        PyErr_Format(PyExc_TypeError, "pump() takes 13 arguments (%zd given)", nargs);
        return NULL;
    }
    long long sock_fd, file_fd, port, blksize, windowsize, size, sent, last, rounds;
    if (as_long_long(args[0], &sock_fd, "sock_fd") || as_long_long(args[1], &file_fd, "file_fd") ||
        as_long_long(args[3], &port, "client_port") || as_long_long(args[4], &blksize, "blksize") ||
        as_long_long(args[5], &windowsize, "windowsize") || as_long_long(args[6], &size, "size") ||
        as_long_long(args[7], &sent, "sent") || as_long_long(args[8], &last, "last") ||
        as_long_long(args[9], &rounds, "rounds"))
        return NULL;
    int gso = PyObject_IsTrue(args[10]);
    if (gso < 0)
        return NULL;
    if (!PyBytes_Check(args[2]) || PyBytes_GET_SIZE(args[2]) != 4) {
        PyErr_SetString(PyExc_TypeError, "client_ip must be 4 packed bytes (socket.inet_aton)");
        return NULL;
    }
    if (port > 65535 || blksize < 8 || blksize > 65464 || windowsize < 1 || windowsize > 65535 ||
        sock_fd > INT32_MAX || file_fd > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "pump(): port, blksize, windowsize or descriptor out of range");
        return NULL;
    }
    struct in_addr client_addr;
    memcpy(&client_addr, PyBytes_AS_STRING(args[2]), 4);
    in_port_t client_port = htons((uint16_t)port);

    Py_buffer rbuf, sbuf;
    if (PyObject_GetBuffer(args[11], &rbuf, PyBUF_WRITABLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[12], &sbuf, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&rbuf);
        return NULL;
    }
    if (sbuf.len < windowsize * blksize + 4 || rbuf.len < 4) {
        PyBuffer_Release(&rbuf);
        PyBuffer_Release(&sbuf);
        PyErr_SetString(PyExc_ValueError, "pump(): buffers too small");
        return NULL;
    }

    unsigned char *in = rbuf.buf, *out = sbuf.buf;
    long long handled = 0, acked = -1;
    ssize_t other = -1;
    struct sockaddr_in from;
    memset(&from, 0, sizeof from);

    Py_BEGIN_ALLOW_THREADS
    while (handled < rounds) {
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom((int)sock_fd, in, (size_t)rbuf.len, MSG_DONTWAIT, (struct sockaddr *)&from,
                             &fromlen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break; /* EAGAIN, or an error Python's recv would also treat as "nothing there" */
        }
        handled++;
        if (fromlen < (socklen_t)sizeof from || from.sin_family != AF_INET ||
            from.sin_addr.s_addr != client_addr.s_addr || from.sin_port != client_port || n < 4 ||
            in[0] != 0 || in[1] != TFTP_ACK || ((in[2] << 8) | in[3]) != (sent & 0xFFFF) || sent >= last) {
            other = n;
            break;
        }
        long long first = sent + 1;
        long long end = first + windowsize < last + 1 ? first + windowsize : last + 1;
        long long offset = (first - 1) * blksize;
        long long want = (end - first) * blksize;
        size_t length = (size_t)(size - offset < want ? size - offset : want);
        size_t got = 0;
        while (got < length) {
            ssize_t r = pread((int)file_fd, out + 4 + got, length - got, (off_t)(offset + (long long)got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got != length) {
            other = n; /* the file shrank: let ReadTransfer see this ACK and end the transfer */
            break;
        }
        acked = sent;
        sent = end - 1;
        send_window((int)sock_fd, &from, out, length, first, end - first, (size_t)blksize, &gso);
    }
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&rbuf);
    PyBuffer_Release(&sbuf);
    PyObject *gso_ok = gso ? Py_True : Py_False;
    if (other < 0)
        return Py_BuildValue("(LLnOO)", handled, acked, (Py_ssize_t)-1, Py_None, gso_ok);
    char host[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &from.sin_addr, host, sizeof host) == NULL)
        host[0] = '\0';
    return Py_BuildValue("(LLn(si)O)", handled, acked, (Py_ssize_t)other, host, (int)ntohs(from.sin_port),
                         gso_ok);
}

static PyMethodDef methods[] = {
    {"pump", (PyCFunction)(void (*)(void))pump, METH_FASTCALL, pump_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_tftp_fast",
    "The happy path of a TFTP download (ACK in, next window out) without the interpreter; see pump().",
    -1,
    methods,
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
    return m;
}
