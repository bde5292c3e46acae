// The bench's one deadline: `promise`, or a rejection with `message` after `ms` (the timer cleared
// either way), so a page that stops answering fails the step instead of hanging the run.
export async function within(promise, ms, message) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}
