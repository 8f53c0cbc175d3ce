/*
 * The happy path of lock-step TFTP in C: receive an ACK, send the next DATA block, repeat.
 *
 * Why this exists: in lock-step (RFC 1350, what BIOS PXE ROMs, iPXE and pxelinux use) every block is a
 * round trip, so the server's CPU per block is the client's latency. The Python transport spends about
 * 4 us per block in the interpreter on top of the kernel's work, which left netboot at 0.7-0.8 of
 * tftpd-hpa with 20 concurrent lock-step clients (docs/performance.md). This loop removes the
 * interpreter from the one case that dominates a PXE boot, and nothing else.
 *
 * The contract, kept deliberately narrow so that the protocol still lives in one place
 * (netboot/protocol/tftp.py, ReadTransfer):
 *
 *   * Python only calls pump() while ReadTransfer.lockstep_position() says the transfer is in plain
 *     lock-step with block ``acked + 1`` outstanding, over IPv4, from a regular file.
 *   * pump() handles a datagram itself only when it is exactly the expected case: from the client's
 *     address and port, opcode ACK, for block ``acked + 1`` (16-bit wire number), which is not the last
 *     block. It then sends DATA ``acked + 2`` read with pread() from the file, the same bytes
 *     ReadTransfer._send_window would build.
 *   * Any other datagram (stranger, ERROR, duplicate ACK, ACK of the last block, a short read because
 *     the file changed) is left for Python: pump() stops and returns its length and sender, and the
 *     transport feeds it to ReadTransfer.receive() as if the fast path did not exist. After pump()
 *     returns, ReadTransfer.lockstep_acked() records the ACKs handled here exactly as _on_ack would.
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
#include <unistd.h>

#define TFTP_DATA 3
#define TFTP_ACK 4

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

PyDoc_STRVAR(pump_doc,
"pump(sock_fd, file_fd, client_ip, client_port, blksize, size, acked, last, rounds, rbuf, sbuf)\n"
"    -> (handled, acked, other_length, other_address)\n"
"\n"
"Receive up to ``rounds`` datagrams on ``sock_fd`` without blocking. Each in-order ACK from\n"
"``client_ip`` (4 packed bytes) and ``client_port`` for block ``acked + 1`` < ``last`` advances\n"
"``acked`` and sends the next DATA block of ``blksize`` bytes from ``file_fd`` (``size`` bytes long).\n"
"Stops at the first datagram that is anything else and returns its length (it is left in ``rbuf``)\n"
"and sender ``(ip, port)``; otherwise ``other_length`` is -1 and ``other_address`` None.\n"
"``handled`` counts the datagrams consumed, the other one included: fewer than ``rounds`` with no\n"
"other datagram means the socket ran dry. ``sbuf`` must hold ``blksize + 4`` bytes.");

static PyObject *
pump(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 11) {
        PyErr_Format(PyExc_TypeError, "pump() takes 11 arguments (%zd given)", nargs);
        return NULL;
    }
    long long sock_fd, file_fd, port, blksize, size, acked, last, rounds;
    if (as_long_long(args[0], &sock_fd, "sock_fd") || as_long_long(args[1], &file_fd, "file_fd") ||
        as_long_long(args[3], &port, "client_port") || as_long_long(args[4], &blksize, "blksize") ||
        as_long_long(args[5], &size, "size") || as_long_long(args[6], &acked, "acked") ||
        as_long_long(args[7], &last, "last") || as_long_long(args[8], &rounds, "rounds"))
        return NULL;
    if (!PyBytes_Check(args[2]) || PyBytes_GET_SIZE(args[2]) != 4) {
        PyErr_SetString(PyExc_TypeError, "client_ip must be 4 packed bytes (socket.inet_aton)");
        return NULL;
    }
    if (port > 65535 || blksize < 8 || blksize > 65464 || sock_fd > INT32_MAX || file_fd > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "pump(): port, blksize or descriptor out of range");
        return NULL;
    }
    struct in_addr client_addr;
    memcpy(&client_addr, PyBytes_AS_STRING(args[2]), 4);
    in_port_t client_port = htons((uint16_t)port);

    Py_buffer rbuf, sbuf;
    if (PyObject_GetBuffer(args[9], &rbuf, PyBUF_WRITABLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[10], &sbuf, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&rbuf);
        return NULL;
    }
    if (sbuf.len < blksize + 4 || rbuf.len < 4) {
        PyBuffer_Release(&rbuf);
        PyBuffer_Release(&sbuf);
        PyErr_SetString(PyExc_ValueError, "pump(): buffers too small");
        return NULL;
    }

    unsigned char *in = rbuf.buf, *out = sbuf.buf;
    long long handled = 0;
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
        long long want = acked + 1;
        if (fromlen < (socklen_t)sizeof from || from.sin_family != AF_INET ||
            from.sin_addr.s_addr != client_addr.s_addr || from.sin_port != client_port || n < 4 ||
            in[0] != 0 || in[1] != TFTP_ACK || ((in[2] << 8) | in[3]) != (want & 0xFFFF) || want >= last) {
            other = n;
            break;
        }
        long long offset = want * blksize;
        size_t length = (size_t)(size - offset < blksize ? size - offset : blksize);
        ssize_t got = 0;
        while ((size_t)got < length) {
            ssize_t r = pread((int)file_fd, out + 4 + got, length - (size_t)got, (off_t)(offset + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += r;
        }
        if ((size_t)got != length) {
            other = n; /* the file shrank: let ReadTransfer see this ACK and end the transfer */
            break;
        }
        acked = want;
        long long block = want + 1;
        out[0] = 0;
        out[1] = TFTP_DATA;
        out[2] = (unsigned char)((block >> 8) & 0xFF);
        out[3] = (unsigned char)(block & 0xFF);
        for (;;) {
            ssize_t s = sendto((int)sock_fd, out, length + 4, 0, (struct sockaddr *)&from, sizeof from);
            if (s < 0 && errno == EINTR)
                continue;
            break; /* other errors are loss; the retransmission timer repairs them */
        }
    }
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&rbuf);
    PyBuffer_Release(&sbuf);
    if (other < 0)
        return Py_BuildValue("(LLnO)", handled, acked, (Py_ssize_t)-1, Py_None);
    char host[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &from.sin_addr, host, sizeof host) == NULL)
        host[0] = '\0';
    return Py_BuildValue("(LLn(si))", handled, acked, (Py_ssize_t)other, host, (int)ntohs(from.sin_port));
}

static PyMethodDef methods[] = {
    {"pump", (PyCFunction)(void (*)(void))pump, METH_FASTCALL, pump_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_tftp_lockstep",
    "The happy path of lock-step TFTP (ACK in, next DATA out) without the interpreter; see pump().",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__tftp_lockstep(void)
{
    return PyModule_Create(&module);
}
