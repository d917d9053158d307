/*
 * pam_pingid: the PAM shim of pingid-ssh.
 *
 * The module holds no policy.  It connects to the pingid-ssh daemon over a
 * unix socket, or, when no daemon listens, runs "pingid-ssh pam-helper", and
 * relays the PAM conversation over a line protocol: one JSON object per line,
 * at most 4096 bytes before the newline.
 *
 *   shim -> session  {"type":"start","user":..,"rhost":..,"service":..,
 *                     "tty":..}
 *                    {"type":"answer","text":..}  {"type":"cancel"}
 *   session -> shim  {"type":"prompt","echo":false,"text":..}
 *                    {"type":"info","text":..}  {"type":"error","text":..}
 *                    {"type":"result","status":"success|bypass|ignore|deny|
 *                                                maxtries"}
 *
 * Only a "success" or "bypass" result returns PAM_SUCCESS.  Every failure
 * (conversation error, EOF, malformed or oversized line, unknown status,
 * timeout, helper crash) returns PAM_AUTH_ERR.
 *
 * Module arguments: config=PATH socket=PATH helper=PATH timeout=SECONDS debug
 *
 * The caller's duties: pam_authenticate() blocks for at most timeout= seconds
 * of waiting on the session, one more second for a helper to exit, and
 * whatever time the application's own conversation function takes to
 * collect an answer, which the module cannot interrupt.  The module may
 * fork; it reaps its child before returning, unless the application has
 * set SIGCHLD to SIG_IGN, in which case the kernel reaps it.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <security/pam_modules.h>
#include <security/pam_ext.h>

/* Bytes of one line, newline excluded.  Lines the module sends stay one
 * byte shorter so that the newline also fits in 4096. */
#define LINE_MAX_LEN		4096
#define ANSWER_MAX_LEN		1024	/* longest answer relayed */
#define LOG_NAME_MAX		64	/* user name bytes shown in syslog */
#define TIMEOUT_DEFAULT		120
#define TIMEOUT_MAX		3600
#define HELPER_GRACE_MS		1000	/* helper's time to exit after result */
#define CONNECT_RETRY_MS	50

#define DEFAULT_CONFIG		"/etc/pingid/pingid.conf"
#define DEFAULT_SOCKET		"/run/pingid/pingid.sock"
#define DEFAULT_HELPER		"/usr/local/sbin/pingid-ssh"
#define HELPER_PATH_ENV		"PATH=/usr/local/sbin:/usr/local/bin:" \
				"/usr/sbin:/usr/bin:/sbin:/bin"

struct options {
	const char *config;
	const char *socket;
	const char *helper;
	int timeout;
	int debug;
};

/* link is the connection to one session: a socket, and a child when the
 * session runs in a helper process. */
struct link {
	int fd;
	pid_t pid;
	int64_t deadline;		/* CLOCK_MONOTONIC, milliseconds */
	char buf[LINE_MAX_LEN + 1];	/* received bytes not yet consumed */
	size_t len;
	int done;			/* a result arrived */
};

enum msg_type { MSG_PROMPT, MSG_INFO, MSG_ERROR, MSG_RESULT };

enum status {
	ST_SUCCESS, ST_BYPASS, ST_IGNORE, ST_DENY, ST_MAXTRIES
};

struct message {
	enum msg_type type;
	int echo;
	enum status status;
	char text[LINE_MAX_LEN + 1];
};

/* Outcomes of the I/O helpers; each failure is logged where it happens. */
enum io_result { IO_OK = 0, IO_FAIL = -1, IO_EOF = -2 };

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
remaining_ms(const struct link *l)
{
	int64_t left = l->deadline - now_ms();

	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* log_name copies a user name for syslog: printable ASCII only, bounded. */
static void
log_name(char *dst, size_t cap, const char *src)
{
	size_t i = 0;

	for (; src != NULL && src[i] != '\0' && i + 1 < cap; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[i] = '\0';
}

static int
parse_options(pam_handle_t *pamh, int argc, const char **argv,
    struct options *opt)
{
	int i, ok = 1;

	opt->config = DEFAULT_CONFIG;
	opt->socket = DEFAULT_SOCKET;
	opt->helper = DEFAULT_HELPER;
	opt->timeout = TIMEOUT_DEFAULT;
	opt->debug = 0;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "debug") == 0) {
			opt->debug = 1;
		} else if (strncmp(a, "config=", 7) == 0) {
			opt->config = a + 7;
		} else if (strncmp(a, "socket=", 7) == 0) {
			opt->socket = a + 7;
		} else if (strncmp(a, "helper=", 7) == 0) {
			opt->helper = a + 7;
		} else if (strncmp(a, "timeout=", 8) == 0) {
			char *end;
			long v;

			errno = 0;
			v = strtol(a + 8, &end, 10);
			if (errno != 0 || end == a + 8 || *end != '\0' ||
			    v < 1 || v > TIMEOUT_MAX) {
				pam_syslog(pamh, LOG_ERR,
				    "invalid timeout=%.32s: want 1 to %d "
				    "seconds", a + 8, TIMEOUT_MAX);
				ok = 0;
			} else {
				opt->timeout = (int)v;
			}
		} else {
			pam_syslog(pamh, LOG_ERR, "unknown option: %.64s", a);
		}
	}

	if (opt->config[0] != '/') {
		pam_syslog(pamh, LOG_ERR, "config= must be an absolute path");
		ok = 0;
	}
	if (opt->socket[0] != '/') {
		pam_syslog(pamh, LOG_ERR, "socket= must be an absolute path");
		ok = 0;
	}
	if (opt->helper[0] != '/') {
		pam_syslog(pamh, LOG_ERR, "helper= must be an absolute path");
		ok = 0;
	}
	return ok;
}

/* ---- JSON encoding ---------------------------------------------------- */

/* jbuf is a bounded output buffer; once full it stays marked as overflowed
 * and every later append is dropped. */
struct jbuf {
	char *p;
	size_t len;
	size_t cap;	/* usable bytes; p has cap + 1 for the NUL */
	int overflow;
};

static void
jb_bytes(struct jbuf *b, const char *s, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
jb_str(struct jbuf *b, const char *s)
{
	jb_bytes(b, s, strlen(s));
}

/*
 * utf8_valid reports whether s[0..n) is well-formed UTF-8 (RFC 3629): no
 * overlong forms, no surrogates, nothing above U+10FFFF.  JSON cannot carry
 * other bytes, and a decoder that replaced them would change the user name.
 */
static int
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k, need;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			need = 1; cp = c & 0x1f; min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2; cp = c & 0x0f; min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3; cp = c & 0x07; min = 0x10000;
		} else {
			return 0;
		}
		if (n - i - 1 < need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

/*
 * jb_string appends s as a JSON string: '"' and '\' escaped, control bytes
 * and DEL as \u00XX, UTF-8 passed through.  Returns 0 when s is not valid
 * UTF-8, leaving the buffer marked as overflowed so it is never sent.
 */
static int
jb_string(struct jbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(s), i;

	if (!utf8_valid((const unsigned char *)s, n)) {
		b->overflow = 1;
		return 0;
	}
	jb_bytes(b, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			jb_bytes(b, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			jb_bytes(b, esc, 6);
		} else {
			jb_bytes(b, (const char *)&s[i], 1);
		}
	}
	jb_bytes(b, "\"", 1);
	return 1;
}

/* jb_field appends ,"key":"value" (no comma for the first field). */
static int
jb_field(struct jbuf *b, const char *key, const char *value, int first)
{
	if (!first)
		jb_bytes(b, ",", 1);
	jb_bytes(b, "\"", 1);
	jb_str(b, key);
	jb_bytes(b, "\":", 2);
	return jb_string(b, value);
}

/* ---- JSON parsing ----------------------------------------------------- */

/*
 * The parser accepts exactly the four shapes the session sends: an object
 * whose members are "type" plus members of that type, each at most once,
 * with JSON whitespace anywhere between tokens.  "text" and "echo" may be
 * missing (empty, false); "status" may not.  Anything else is an error.
 */
struct parser {
	const char *s;
	size_t n;
	size_t i;
};

static void
skip_ws(struct parser *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
	    p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
}

static int
expect(struct parser *p, char c)
{
	skip_ws(p);
	if (p->i >= p->n || p->s[p->i] != c)
		return 0;
	p->i++;
	return 1;
}

static int
hex4(struct parser *p, uint32_t *out)
{
	uint32_t v = 0;
	int k;

	if (p->n - p->i < 4)
		return 0;
	for (k = 0; k < 4; k++) {
		char c = p->s[p->i++];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return 0;
	}
	*out = v;
	return 1;
}

static int
put_byte(char *out, size_t cap, size_t *len, char c)
{
	if (*len + 1 >= cap)
		return 0;
	out[(*len)++] = c;
	return 1;
}

static int
put_utf8(char *out, size_t cap, size_t *len, uint32_t cp)
{
	if (cp < 0x80)
		return put_byte(out, cap, len, (char)cp);
	if (cp < 0x800)
		return put_byte(out, cap, len, (char)(0xc0 | (cp >> 6))) &&
		    put_byte(out, cap, len, (char)(0x80 | (cp & 0x3f)));
	if (cp < 0x10000)
		return put_byte(out, cap, len, (char)(0xe0 | (cp >> 12))) &&
		    put_byte(out, cap, len,
			(char)(0x80 | ((cp >> 6) & 0x3f))) &&
		    put_byte(out, cap, len, (char)(0x80 | (cp & 0x3f)));
	return put_byte(out, cap, len, (char)(0xf0 | (cp >> 18))) &&
	    put_byte(out, cap, len, (char)(0x80 | ((cp >> 12) & 0x3f))) &&
	    put_byte(out, cap, len, (char)(0x80 | ((cp >> 6) & 0x3f))) &&
	    put_byte(out, cap, len, (char)(0x80 | (cp & 0x3f)));
}

/*
 * parse_string reads a JSON string into out (cap bytes with the NUL).  It
 * rejects raw control bytes, invalid UTF-8, bad escapes, lone surrogates
 * and U+0000, which a C string cannot carry.
 */
static int
parse_string(struct parser *p, char *out, size_t cap)
{
	size_t len = 0;

	if (!expect(p, '"'))
		return 0;
	while (p->i < p->n && p->s[p->i] != '"') {
		unsigned char c = (unsigned char)p->s[p->i];
		uint32_t cp, lo;

		if (c < 0x20)
			return 0;
		if (c != '\\') {
			if (!put_byte(out, cap, &len, (char)c))
				return 0;
			p->i++;
			continue;
		}
		if (++p->i >= p->n)
			return 0;
		switch (p->s[p->i++]) {
		case '"':  cp = '"'; break;
		case '\\': cp = '\\'; break;
		case '/':  cp = '/'; break;
		case 'b':  cp = '\b'; break;
		case 'f':  cp = '\f'; break;
		case 'n':  cp = '\n'; break;
		case 'r':  cp = '\r'; break;
		case 't':  cp = '\t'; break;
		case 'u':
			if (!hex4(p, &cp))
				return 0;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return 0;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p->n - p->i < 6 || p->s[p->i] != '\\' ||
				    p->s[p->i + 1] != 'u')
					return 0;
				p->i += 2;
				if (!hex4(p, &lo) || lo < 0xdc00 ||
				    lo > 0xdfff)
					return 0;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			}
			break;
		default:
			return 0;
		}
		if (cp == 0 || !put_utf8(out, cap, &len, cp))
			return 0;
	}
	if (p->i >= p->n)
		return 0;
	p->i++;
	out[len] = '\0';

	/* Escapes produce valid UTF-8; this checks the raw bytes. */
	return utf8_valid((const unsigned char *)out, len);
}

static int
parse_bool(struct parser *p, int *out)
{
	skip_ws(p);
	if (p->n - p->i >= 4 && memcmp(p->s + p->i, "true", 4) == 0) {
		p->i += 4;
		*out = 1;
		return 1;
	}
	if (p->n - p->i >= 5 && memcmp(p->s + p->i, "false", 5) == 0) {
		p->i += 5;
		*out = 0;
		return 1;
	}
	return 0;
}

enum {
	F_TYPE = 1, F_ECHO = 2, F_TEXT = 4, F_STATUS = 8
};

/* parse_message parses one line (without its newline) into m. */
static int
parse_message(const char *line, size_t n, struct message *m)
{
	struct parser p = { line, n, 0 };
	char key[16], type[16], status[16];
	unsigned seen = 0, want;

	memset(m, 0, sizeof(*m));
	if (!expect(&p, '{'))
		return 0;
	skip_ws(&p);
	if (p.i < p.n && p.s[p.i] == '}')
		return 0;
	for (;;) {
		unsigned f;

		if (!parse_string(&p, key, sizeof(key)) || !expect(&p, ':'))
			return 0;
		if (strcmp(key, "type") == 0) {
			f = F_TYPE;
			if (!parse_string(&p, type, sizeof(type)))
				return 0;
		} else if (strcmp(key, "echo") == 0) {
			f = F_ECHO;
			if (!parse_bool(&p, &m->echo))
				return 0;
		} else if (strcmp(key, "text") == 0) {
			f = F_TEXT;
			if (!parse_string(&p, m->text, sizeof(m->text)))
				return 0;
		} else if (strcmp(key, "status") == 0) {
			f = F_STATUS;
			if (!parse_string(&p, status, sizeof(status)))
				return 0;
		} else {
			return 0;
		}
		if (seen & f)
			return 0;
		seen |= f;
		skip_ws(&p);
		if (p.i < p.n && p.s[p.i] == ',') {
			p.i++;
			continue;
		}
		if (!expect(&p, '}'))
			return 0;
		break;
	}
	skip_ws(&p);
	if (p.i != p.n || !(seen & F_TYPE))
		return 0;

	/* A session may leave out an empty "text" or a false "echo"; only
	 * members that belong to the type are allowed. */
	if (strcmp(type, "prompt") == 0) {
		m->type = MSG_PROMPT;
		want = F_TYPE | (seen & (F_TEXT | F_ECHO));
	} else if (strcmp(type, "info") == 0) {
		m->type = MSG_INFO;
		want = F_TYPE | (seen & F_TEXT);
	} else if (strcmp(type, "error") == 0) {
		m->type = MSG_ERROR;
		want = F_TYPE | (seen & F_TEXT);
	} else if (strcmp(type, "result") == 0) {
		m->type = MSG_RESULT;
		want = F_TYPE | F_STATUS;
	} else {
		return 0;
	}
	if (seen != want)
		return 0;
	if (m->type != MSG_RESULT)
		return 1;

	if (strcmp(status, "success") == 0)
		m->status = ST_SUCCESS;
	else if (strcmp(status, "bypass") == 0)
		m->status = ST_BYPASS;
	else if (strcmp(status, "ignore") == 0)
		m->status = ST_IGNORE;
	else if (strcmp(status, "deny") == 0)
		m->status = ST_DENY;
	else if (strcmp(status, "maxtries") == 0)
		m->status = ST_MAXTRIES;
	else
		return 0;
	return 1;
}

/* ---- transport -------------------------------------------------------- */

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl != -1)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/*
 * connect_socket connects to the daemon.  It returns the socket, -1 on a
 * failure that must deny, or -2 when nothing listens (no file, or a stale
 * one) and the helper should run instead.
 */
static int
connect_socket(pam_handle_t *pamh, const struct options *opt,
    struct link *l)
{
	struct sockaddr_un sa;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	size_t plen = strlen(opt->socket);
	int fd, err;

	if (plen >= sizeof(sa.sun_path)) {
		pam_syslog(pamh, LOG_ERR, "socket path too long: %.64s...",
		    opt->socket);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, opt->socket, plen);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		pam_syslog(pamh, LOG_ERR, "socket: %m");
		return -1;
	}
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		err = errno;
		if (err == EINTR)
			continue;
		/* A full backlog; the daemon is busy, not gone. */
		if (err == EAGAIN && remaining_ms(l) > 0) {
			(void)poll(NULL, 0, CONNECT_RETRY_MS);
			continue;
		}
		close(fd);
		if (err == ENOENT || err == ECONNREFUSED)
			return -2;
		errno = err;
		pam_syslog(pamh, LOG_ERR, "connect %s: %m", opt->socket);
		return -1;
	}

	/* Only root, or the user this process runs as, may speak for the
	 * session: anyone else on that path is an impostor. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
		pam_syslog(pamh, LOG_ERR, "SO_PEERCRED on %s: %m",
		    opt->socket);
		close(fd);
		return -1;
	}
	if (cred.uid != 0 && cred.uid != geteuid()) {
		pam_syslog(pamh, LOG_ERR, "refusing %s: owned by uid %u, "
		    "not root", opt->socket, (unsigned)cred.uid);
		close(fd);
		return -1;
	}
	return fd;
}

/* close_fds_from closes every descriptor from lo up, in a forked child. */
static void
close_fds_from(int lo)
{
	long max;
	int fd;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lo, ~0U, 0) == 0)
		return;
#endif
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = lo; fd < max; fd++)
		(void)close(fd);
}

/*
 * helper_child runs in the forked child: default signal handling, the
 * socket on stdin and stdout, nothing else open, then exec.  Only
 * async-signal-safe calls happen here.
 */
static void __attribute__((noreturn))
helper_child(const struct options *opt, char *const argv[],
    char *const envp[], int sock, int keep_stderr, int devnull,
    pid_t parent)
{
	sigset_t none;
	int sig;

	for (sig = 1; sig < NSIG; sig++)
		(void)signal(sig, SIG_DFL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);

	/* Die with the module's process rather than linger. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);

	/* dup2 onto itself would keep FD_CLOEXEC: move low descriptors up. */
	if (sock < 3 && (sock = fcntl(sock, F_DUPFD, 3)) == -1)
		_exit(127);
	if (devnull != -1 && devnull < 3 &&
	    (devnull = fcntl(devnull, F_DUPFD, 3)) == -1)
		_exit(127);
	if (dup2(sock, STDIN_FILENO) == -1 ||
	    dup2(sock, STDOUT_FILENO) == -1)
		_exit(127);
	if (!keep_stderr && (devnull == -1 ||
	    dup2(devnull, STDERR_FILENO) == -1))
		_exit(127);
	close_fds_from(3);
	execve(opt->helper, argv, envp);
	_exit(127);
}

/*
 * start_helper runs HELPER pam-helper --config CONFIG with stdin and stdout
 * on one end of a socket pair and stderr inherited (or /dev/null), in an
 * environment that holds only PATH.  Returns the parent's end or -1.
 */
static int
start_helper(pam_handle_t *pamh, const struct options *opt, struct link *l)
{
	char *const argv[] = {
		(char *)opt->helper, (char *)"pam-helper",
		(char *)"--config", (char *)opt->config, NULL
	};
	char *const envp[] = { (char *)HELPER_PATH_ENV, NULL };
	sigset_t all, old;
	struct stat st;
	pid_t parent = getpid();
	int sv[2], devnull = -1, keep_stderr, err;

	if (stat(opt->helper, &st) != 0) {
		pam_syslog(pamh, LOG_ERR, "helper %s: %m", opt->helper);
		return -1;
	}
	/* Look at stderr before the socket pair can take descriptor 2. */
	keep_stderr = fcntl(STDERR_FILENO, F_GETFD) != -1;
	if (!keep_stderr)
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		pam_syslog(pamh, LOG_ERR, "socketpair: %m");
		if (devnull != -1)
			close(devnull);
		return -1;
	}

	/* Block signals across fork so that no handler of the application
	 * runs in the child before exec. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	l->pid = fork();
	if (l->pid == 0)
		helper_child(opt, argv, envp, sv[1], keep_stderr, devnull,
		    parent);
	err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(sv[1]);
	if (devnull != -1)
		close(devnull);
	if (l->pid == -1) {
		l->pid = 0;
		errno = err;
		pam_syslog(pamh, LOG_ERR, "fork: %m");
		close(sv[0]);
		return -1;
	}
	set_nonblock(sv[0]);
	return sv[0];
}

/*
 * finish ends the session link: closes the socket and, for a helper, gives
 * it HELPER_GRACE_MS to exit (so that it can act on a cancel, or finish its
 * log after a result), then kills and reaps it.  Safe on a link never
 * opened.
 */
static void
finish(pam_handle_t *pamh, const struct options *opt, struct link *l)
{
	int64_t until;
	int st = 0, reaped = 0;
	pid_t r;

	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	if (l->pid <= 0)
		return;

	until = now_ms() + HELPER_GRACE_MS;
	for (;;) {
		r = waitpid(l->pid, &st, WNOHANG);
		if (r == l->pid) {
			reaped = 1;
			break;
		}
		if (r == -1 && errno != EINTR)
			break;	/* ECHILD: the application reaps */
		if (r == 0 && now_ms() >= until)
			break;
		if (r == 0)
			(void)poll(NULL, 0, 5);
	}
	if (!reaped && r == 0) {
		pam_syslog(pamh, LOG_WARNING, "helper %d did not exit; killed",
		    (int)l->pid);
		(void)kill(l->pid, SIGKILL);
		while ((r = waitpid(l->pid, &st, 0)) == -1 && errno == EINTR)
			;
		reaped = r == l->pid;
	}
	if (reaped && opt->debug) {
		if (WIFEXITED(st))
			pam_syslog(pamh, LOG_DEBUG, "helper exited with %d",
			    WEXITSTATUS(st));
		else if (WIFSIGNALED(st))
			pam_syslog(pamh, LOG_DEBUG, "helper killed by "
			    "signal %d", WTERMSIG(st));
	}
	if (reaped && l->done && WIFEXITED(st) && WEXITSTATUS(st) != 0)
		pam_syslog(pamh, LOG_WARNING, "helper exited with %d",
		    WEXITSTATUS(st));
	l->pid = 0;
}

/* send_line writes n bytes (a line with its newline) before the deadline,
 * or within 100 ms when quiet.  MSG_NOSIGNAL keeps a closed peer from
 * raising SIGPIPE in the application. */
static int
send_line(pam_handle_t *pamh, struct link *l, const char *s, size_t n,
    int quiet)
{
	size_t off = 0;

	while (off < n) {
		struct pollfd pfd = { l->fd, POLLOUT, 0 };
		ssize_t w;
		int ms;

		w = send(l->fd, s + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
			if (!quiet)
				pam_syslog(pamh, LOG_ERR, "write to "
				    "session: %m");
			return IO_FAIL;
		}
		ms = remaining_ms(l);
		if (quiet && ms > 100)
			ms = 100;
		if (ms == 0 || poll(&pfd, 1, ms) == 0) {
			if (!quiet)
				pam_syslog(pamh, LOG_ERR, "timed out writing "
				    "to session");
			return IO_FAIL;
		}
	}
	return IO_OK;
}

/* send_cancel tells the session that the login is abandoned, best
 * effort: the module fails the login whether or not this arrives. */
static void
send_cancel(pam_handle_t *pamh, struct link *l)
{
	static const char cancel[] = "{\"type\":\"cancel\"}\n";

	(void)send_line(pamh, l, cancel, sizeof(cancel) - 1, 1);
}

/*
 * read_message reads and parses the next line before the deadline.  A line
 * longer than LINE_MAX_LEN, an empty or malformed line, EOF and timeout are
 * all failures.
 */
static int
read_message(pam_handle_t *pamh, const struct options *opt, struct link *l,
    struct message *m)
{
	for (;;) {
		char *nl = memchr(l->buf, '\n', l->len);
		struct pollfd pfd = { l->fd, POLLIN, 0 };
		ssize_t r;
		int ms, ok;

		if (nl != NULL) {
			size_t n = (size_t)(nl - l->buf);

			ok = parse_message(l->buf, n, m);
			memmove(l->buf, nl + 1, l->len - n - 1);
			l->len -= n + 1;
			if (!ok) {
				pam_syslog(pamh, LOG_ERR, "malformed message "
				    "from session (%zu bytes)", n);
				return IO_FAIL;
			}
			return IO_OK;
		}
		if (l->len > LINE_MAX_LEN) {
			pam_syslog(pamh, LOG_ERR, "message from session "
			    "longer than %d bytes", LINE_MAX_LEN);
			return IO_FAIL;
		}

		r = read(l->fd, l->buf + l->len, sizeof(l->buf) - l->len);
		if (r > 0) {
			l->len += (size_t)r;
			continue;
		}
		if (r == 0) {
			pam_syslog(pamh, LOG_ERR, "session ended without a "
			    "result");
			return IO_EOF;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			pam_syslog(pamh, LOG_ERR, "read from session: %m");
			return IO_FAIL;
		}
		ms = remaining_ms(l);
		if (ms > 0) {
			ok = poll(&pfd, 1, ms);
			if (ok > 0 || (ok == -1 && errno == EINTR))
				continue;
			if (ok == -1) {
				pam_syslog(pamh, LOG_ERR, "poll: %m");
				return IO_FAIL;
			}
		}
		pam_syslog(pamh, LOG_ERR, "no answer from session within "
		    "%d seconds", opt->timeout);
		return IO_FAIL;
	}
}

/* ---- conversation ----------------------------------------------------- */

/*
 * converse shows one message.  For a prompt it copies the answer into ans
 * (cap bytes) and wipes the application's copy.  Any failure, a missing
 * response included, returns 0.
 */
static int
converse(pam_handle_t *pamh, int style, const char *text, char *ans,
    size_t cap)
{
	const struct pam_conv *conv = NULL;
	struct pam_message msg;
	const struct pam_message *pmsg = &msg;
	struct pam_response *resp = NULL;
	int rc, ok = 1;

	rc = pam_get_item(pamh, PAM_CONV, (const void **)&conv);
	if (rc != PAM_SUCCESS || conv == NULL || conv->conv == NULL) {
		pam_syslog(pamh, LOG_ERR, "no conversation function");
		return 0;
	}
	msg.msg_style = style;
	msg.msg = text;
	rc = conv->conv(1, &pmsg, &resp, conv->appdata_ptr);
	if (rc != PAM_SUCCESS) {
		pam_syslog(pamh, LOG_ERR, "conversation failed: %s",
		    pam_strerror(pamh, rc));
		ok = 0;
	}

	if (ans != NULL && ok) {
		size_t n;

		if (resp == NULL || resp->resp == NULL) {
			pam_syslog(pamh, LOG_ERR, "conversation returned no "
			    "answer");
			ok = 0;
		} else if ((n = strnlen(resp->resp, cap)) >= cap) {
			pam_syslog(pamh, LOG_ERR, "answer longer than %zu "
			    "bytes", cap - 1);
			ok = 0;
		} else {
			memcpy(ans, resp->resp, n + 1);
		}
	}
	if (resp != NULL) {
		if (resp->resp != NULL) {
			explicit_bzero(resp->resp, strlen(resp->resp));
			free(resp->resp);
		}
		free(resp);
	}
	return ok;
}

/* ---- the login -------------------------------------------------------- */

static const char *
item(pam_handle_t *pamh, int type)
{
	const void *v = NULL;

	if (pam_get_item(pamh, type, &v) != PAM_SUCCESS || v == NULL)
		return "";
	return v;
}

/* open_link connects to the daemon, or starts the helper when nothing
 * listens on the socket. */
static int
open_link(pam_handle_t *pamh, const struct options *opt, struct link *l)
{
	int fd = connect_socket(pamh, opt, l);

	if (fd >= 0) {
		if (opt->debug)
			pam_syslog(pamh, LOG_DEBUG, "connected to %s",
			    opt->socket);
		l->fd = fd;
		return 1;
	}
	if (fd == -1)
		return 0;

	if (opt->debug)
		pam_syslog(pamh, LOG_DEBUG, "no daemon on %s; running %s",
		    opt->socket, opt->helper);
	fd = start_helper(pamh, opt, l);
	if (fd < 0)
		return 0;
	l->fd = fd;
	return 1;
}

/* relay runs the session: start message, then messages until a result.
 * Returns the PAM code. */
static int
relay(pam_handle_t *pamh, const struct options *opt, struct link *l,
    const char *user)
{
	char line[LINE_MAX_LEN + 1];
	char answer[ANSWER_MAX_LEN + 1];
	char name[LOG_NAME_MAX + 1];
	struct message m;
	struct jbuf b;

	log_name(name, sizeof(name), user);
	b = (struct jbuf){ line, 0, LINE_MAX_LEN, 0 };
	jb_str(&b, "{\"type\":\"start\",");
	if (!jb_field(&b, "user", user, 1) ||
	    !jb_field(&b, "rhost", item(pamh, PAM_RHOST), 0) ||
	    !jb_field(&b, "service", item(pamh, PAM_SERVICE), 0) ||
	    !jb_field(&b, "tty", item(pamh, PAM_TTY), 0)) {
		pam_syslog(pamh, LOG_ERR, "user %s: PAM items are not valid "
		    "UTF-8", name);
		return PAM_AUTH_ERR;
	}
	jb_str(&b, "}\n");
	if (b.overflow) {
		pam_syslog(pamh, LOG_ERR, "user %s: PAM items too long",
		    name);
		return PAM_AUTH_ERR;
	}

	if (!open_link(pamh, opt, l))
		return PAM_AUTH_ERR;
	if (send_line(pamh, l, line, b.len, 0) != IO_OK)
		return PAM_AUTH_ERR;

	for (;;) {
		int rc = read_message(pamh, opt, l, &m);

		if (rc == IO_EOF)
			return PAM_AUTH_ERR;
		if (rc != IO_OK) {
			send_cancel(pamh, l);
			return PAM_AUTH_ERR;
		}

		switch (m.type) {
		case MSG_INFO:
		case MSG_ERROR:
			if (opt->debug)
				pam_syslog(pamh, LOG_DEBUG, "relaying %s",
				    m.type == MSG_INFO ? "info" : "error");
			if (!converse(pamh, m.type == MSG_INFO ?
			    PAM_TEXT_INFO : PAM_ERROR_MSG, m.text, NULL, 0)) {
				send_cancel(pamh, l);
				return PAM_AUTH_ERR;
			}
			break;

		case MSG_PROMPT:
			if (opt->debug)
				pam_syslog(pamh, LOG_DEBUG, "relaying prompt "
				    "(echo %s)", m.echo ? "on" : "off");
			if (!converse(pamh, m.echo ? PAM_PROMPT_ECHO_ON :
			    PAM_PROMPT_ECHO_OFF, m.text, answer,
			    sizeof(answer))) {
				send_cancel(pamh, l);
				return PAM_AUTH_ERR;
			}
			if (remaining_ms(l) == 0) {
				explicit_bzero(answer, sizeof(answer));
				pam_syslog(pamh, LOG_ERR, "answer came after "
				    "the %d second deadline", opt->timeout);
				send_cancel(pamh, l);
				return PAM_AUTH_ERR;
			}
			b = (struct jbuf){ line, 0, LINE_MAX_LEN, 0 };
			jb_str(&b, "{\"type\":\"answer\",");
			rc = jb_field(&b, "text", answer, 1);
			jb_str(&b, "}\n");
			explicit_bzero(answer, sizeof(answer));
			if (!rc || b.overflow) {
				explicit_bzero(line, sizeof(line));
				pam_syslog(pamh, LOG_ERR, "answer is not "
				    "valid UTF-8");
				send_cancel(pamh, l);
				return PAM_AUTH_ERR;
			}
			rc = send_line(pamh, l, line, b.len, 0);
			explicit_bzero(line, sizeof(line));
			if (rc != IO_OK)
				return PAM_AUTH_ERR;
			break;

		case MSG_RESULT:
			l->done = 1;
			switch (m.status) {
			case ST_SUCCESS:
				if (opt->debug)
					pam_syslog(pamh, LOG_DEBUG, "user %s:"
					    " success", name);
				return PAM_SUCCESS;
			case ST_BYPASS:
				pam_syslog(pamh, LOG_WARNING, "user %s: MFA "
				    "bypassed by policy", name);
				return PAM_SUCCESS;
			case ST_IGNORE:
				if (opt->debug)
					pam_syslog(pamh, LOG_DEBUG, "user %s:"
					    " not in scope", name);
				return PAM_IGNORE;
			case ST_DENY:
				pam_syslog(pamh, LOG_NOTICE, "user %s: "
				    "denied", name);
				return PAM_AUTH_ERR;
			case ST_MAXTRIES:
				pam_syslog(pamh, LOG_NOTICE, "user %s: too "
				    "many attempts", name);
				return PAM_MAXTRIES;
			}
			return PAM_AUTH_ERR;
		}
	}
}

static int
authenticate(pam_handle_t *pamh, int argc, const char **argv)
{
	struct options opt;
	struct link l;
	const char *user = NULL;
	int rc;

	if (!parse_options(pamh, argc, argv, &opt))
		return PAM_AUTH_ERR;

	rc = pam_get_user(pamh, &user, NULL);
	if (rc != PAM_SUCCESS || user == NULL || user[0] == '\0') {
		pam_syslog(pamh, LOG_ERR, "cannot determine user name: %s",
		    pam_strerror(pamh, rc));
		return PAM_AUTH_ERR;
	}

	memset(&l, 0, sizeof(l));
	l.fd = -1;
	l.deadline = now_ms() + (int64_t)opt.timeout * 1000;
	rc = relay(pamh, &opt, &l, user);
	finish(pamh, &opt, &l);
	return rc;
}

/* ---- PAM entry points ------------------------------------------------- */

int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc,
    const char **argv)
{
	(void)flags;
	return authenticate(pamh, argc, argv);
}

int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_SUCCESS;
}

int
pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}

int
pam_sm_open_session(pam_handle_t *pamh, int flags, int argc,
    const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}

int
pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
    const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}

int
pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh; (void)flags; (void)argc; (void)argv;
	return PAM_IGNORE;
}
