/*
 * pamdrive: runs pam_authenticate() through the real libpam for tests, with
 * the service read from a private directory (pam_start_confdir), answers
 * taken from the command line and every message reported on stdout.
 *
 * usage: pamdrive [-u USER] [-r RHOST] [-t TTY] [-f] [-C] CONFDIR SERVICE
 *                 [ANSWER...]
 *        pamdrive -c            (print the PAM codes of this libpam)
 *
 * Each prompt takes the next ANSWER: "=TEXT" answers TEXT, "!null" returns
 * no response array, "!nulltext" a response whose text is NULL, "!err" a
 * conversation error.  A prompt with no ANSWER left is a conversation
 * error.  Info and error messages get a NULL text, or a conversation error
 * with -f.  -C closes stdin and stderr first, as some daemons run.
 *
 * Output, one item a line:  msg STYLE HEXTEXT | rc CODE |
 * leak FD TARGET | children none|some
 */

#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/wait.h>

#include <security/pam_appl.h>

struct script {
	char **answers;
	int n;
	int next;
	int fail_info;
};

static void
print_hex(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		printf("%02x", (unsigned char)*s);
}

static int
conv(int num, const struct pam_message **msg, struct pam_response **resp,
    void *data)
{
	struct script *sc = data;
	struct pam_response *r;
	int i;

	r = calloc((size_t)num, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < num; i++) {
		int style = msg[i]->msg_style;
		const char *a;

		printf("msg %d ", style);
		print_hex(msg[i]->msg);
		printf("\n");
		fflush(stdout);

		if (style == PAM_TEXT_INFO || style == PAM_ERROR_MSG) {
			if (sc->fail_info)
				goto fail;
			continue;
		}
		if (sc->next >= sc->n)
			goto fail;
		a = sc->answers[sc->next++];
		if (strcmp(a, "!null") == 0) {
			free(r);
			*resp = NULL;
			return PAM_SUCCESS;
		}
		if (strcmp(a, "!nulltext") == 0)
			continue;
		if (a[0] != '=')
			goto fail;
		r[i].resp = strdup(a + 1);
		if (r[i].resp == NULL)
			goto fail;
	}
	*resp = r;
	return PAM_SUCCESS;
fail:
	for (i = 0; i < num; i++)
		free(r[i].resp);
	free(r);
	*resp = NULL;
	return PAM_CONV_ERR;
}

/* open_fds marks in set[] the descriptors open now, below max. */
static int
open_fds(char *set, int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int self;

	if (d == NULL)
		return -1;
	self = dirfd(d);
	memset(set, 0, (size_t)max);
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == self || fd < 0 || fd >= max)
			continue;
		set[fd] = 1;
	}
	closedir(d);
	return 0;
}

#define FD_MAX 4096

int
main(int argc, char **argv)
{
	static char before[FD_MAX], after[FD_MAX];
	struct script sc = { 0 };
	struct pam_conv pc = { conv, &sc };
	pam_handle_t *pamh = NULL;
	const char *user = "alice", *rhost = NULL, *tty = NULL;
	int opt, rc, fd, close_std = 0;

	while ((opt = getopt(argc, argv, "u:r:t:fCc")) != -1) {
		switch (opt) {
		case 'u': user = optarg; break;
		case 'r': rhost = optarg; break;
		case 't': tty = optarg; break;
		case 'f': sc.fail_info = 1; break;
		case 'C': close_std = 1; break;
		case 'c':
			printf("SUCCESS %d\nAUTH_ERR %d\nIGNORE %d\n"
			    "MAXTRIES %d\nPERM_DENIED %d\nCONV_ERR %d\n"
			    "TEXT_INFO %d\nERROR_MSG %d\n"
			    "PROMPT_ECHO_OFF %d\nPROMPT_ECHO_ON %d\n",
			    PAM_SUCCESS, PAM_AUTH_ERR, PAM_IGNORE,
			    PAM_MAXTRIES, PAM_PERM_DENIED, PAM_CONV_ERR,
			    PAM_TEXT_INFO, PAM_ERROR_MSG,
			    PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON);
			return 0;
		default:
			return 2;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr, "usage: pamdrive [-u USER] [-r RHOST] "
		    "[-t TTY] [-f] CONFDIR SERVICE [ANSWER...]\n");
		return 2;
	}
	sc.answers = argv + optind + 2;
	sc.n = argc - optind - 2;
	if (close_std) {
		close(STDIN_FILENO);
		close(STDERR_FILENO);
	}

	/* Open the syslog connection now so it is not counted as a leak. */
	openlog("pamdrive", LOG_NDELAY | LOG_PID, LOG_AUTHPRIV);
	if (open_fds(before, FD_MAX) != 0) {
		perror("pamdrive: /proc/self/fd");
		return 2;
	}

	rc = pam_start_confdir(argv[optind + 1], user, &pc, argv[optind],
	    &pamh);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pamdrive: pam_start_confdir: %d\n", rc);
		return 2;
	}
	if (rhost != NULL)
		pam_set_item(pamh, PAM_RHOST, rhost);
	if (tty != NULL)
		pam_set_item(pamh, PAM_TTY, tty);
	rc = pam_authenticate(pamh, 0);
	printf("rc %d\n", rc);
	pam_end(pamh, rc);

	if (open_fds(after, FD_MAX) != 0) {
		perror("pamdrive: /proc/self/fd");
		return 2;
	}
	for (fd = 0; fd < FD_MAX; fd++) {
		char path[64], target[256];
		ssize_t n;

		if (!after[fd] || before[fd])
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = '\0';
		printf("leak %d %s\n", fd, target);
	}
	errno = 0;
	if (waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD)
		printf("children none\n");
	else
		printf("children some\n");
	closelog();
	return 0;
}
