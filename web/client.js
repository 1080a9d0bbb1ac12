// The demo page's one call to its own server: JSON with the page's CSRF token.
export async function post(url, body) {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
    body: JSON.stringify(body),
  });
  try {
    return await response.json();
  } catch {
    return { message: `The server answered ${response.status}.` };
  }
}
