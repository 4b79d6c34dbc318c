"""The engine: from a queued job to stored images, within the provider's limits.

Two kinds of work, both safe to run twice:

- The dispatcher (one at a time across all worker hosts, by a database lease) admits
  queued jobs fairly within each model's running limit and submit rate, submits the async
  ones, and polls every task at the provider within the account's query budget. Because
  all queries and async submits go through it, the limits hold however many worker
  processes there are. Its state is one `Dispatcher` object (dispatcher.py); each phase
  of its pass is a function, in the module named below, that takes it. It runs in slices
  of a task's time, each handing its lease and rate state to the next (runner.py).
- A job step (steps.py) does the slow work of one job: a sync generation, then
  downloading, verifying and storing its images (downloads.py, results.py) and settling
  its quota. A per-job lease makes a duplicate delivery a no-op; attempts are counted
  when a step starts, so a job that crashes its worker fails (or, its images made, is
  held) after a few tries instead of crashing workers forever.

Invariants, and where each is kept:

- A task id is committed before it is first polled, and a job with a task id is never
  submitted again. admission.py marks each job as sent in a commit of its own before its
  request leaves; submits.py commits each task id as its answer arrives; polling.py looks
  only at jobs that have one. A submit left unanswered is matched by listing the
  provider's tasks (recovery.py), never sent again; a job left without a task fails with
  nothing charged.
- One step per job, one dispatcher in all: leases.py (`claim` takes a job's lease and
  counts the attempt; `lease_kept` renews a lease while its holder lives;
  `acquire_dispatcher` takes the dispatcher's). handover.py hands a job whose step's
  worker vanished to a new step once its lease or hold runs out.
- Exactly-once storage and charge: results.py stores an image under a name made of its
  job and index, and updates its row in place, so a retried download replaces rather
  than duplicates. outcomes.py's `finish` ends a job only from the states it expects and
  settles its quota for exactly the images stored in the same transaction, so a job is
  settled once.
- The provider's limits: running tasks per model (admission.py gives each model the room
  its running limit and `queue_ahead` leave), the submit rate per model and the query
  budget (limits.py's `RateWindow`s, kept on the dispatcher: admission.py takes a submit,
  polling.py, cancel.py and recovery.py take queries). runner.py hands the windows to the
  next slice, so the limits hold across slices too.
- A streamed piece (mixed text and images) is never sent twice and loses no picture it
  announced: streaming.py commits each picture's URL before storing it at once, and a step
  that finds its stream interrupted stores what was announced instead of sending again.
- Fair share between people: admission.py's `FairShare` sends, per model, the job of the
  person with the fewest jobs at the provider, and among equals of the one served
  longest ago.
- Telling people never fails a job: notices.py runs after `finish` has committed (the
  author told if she was not watching, thresholds of quotas and budgets), and logs and
  drops any fault of its own.

The other modules: streaming.py (a piece of mixed text and images, read as it streams),
forecast.py (how long each model takes; the provider's clock), planning.py (when each task
is looked at next), cancel.py (cancels), context.py (the job on every log line),
provider.py (the configured client), shutdown.py (the cluster's stop flag), heartbeat.py
(the cluster's heartbeat row).
"""
