/*
 * cli/sendmail.h - the sendmail, mailq and newaliases commands.
 *
 * Owns:  each sendmail mode (sendopts.h): reading and fixing up the message, choosing the
 *        sender and the recipients, submitting it (submit.h), -bs, and the transcript
 *        of -v; mailq and newaliases are the -bp and -bi modes.
 * Never: talks to the daemon other than through submit.c, ctlcmd.c and the -bs proxy.
 */
#ifndef POSTEL_CLI_SENDMAIL_H
#define POSTEL_CLI_SENDMAIL_H

#include "cli/sendopts.h"

struct conf;

/*
 * Run sendmail with argv (argv[0] is the name it was called by) starting in mode
 * (SENDOPTS_DELIVER for sendmail, SENDOPTS_QUEUE for mailq, SENDOPTS_ALIASES for
 * newaliases); prog names it in messages. Returns the exit status (sysexits.h).
 */
int sendmail_main(int argc, char **argv, enum sendopts_mode mode, const char *prog);

/*
 * The domain for unqualified addresses and the default sender: the hostname when it is
 * one of the local domains, else the first local domain, else the hostname.
 */
const char *sendmail_qualify_domain(const struct conf *c);

#endif
