/*
 * progress.h -- mnemoctl's progress display (progress.c) for the library's
 * long operations (mnemo_progress_set(3)): the collection at open, and the
 * heap check.
 */
#ifndef MNEMOCTL_PROGRESS_H
#define MNEMOCTL_PROGRESS_H

/* Show the progress of what `cmd` makes the library do from now on, as
 * MNEMOCTL_PROGRESS says: "auto" (the default) redraws one line on stderr
 * when it is a terminal and the work has run for a second; "always"
 * prints every report as a line (for scripts); "never" shows nothing. */
void progress_start(const char *cmd);
/* Stop showing it, and erase the line if one was drawn. */
void progress_end(void);

#endif
