import { html, render } from 'lit-html';
import { api, login } from '../api.js';
import type { LoginResponse } from '../wire.js';

/** User and password, as `khd login` asks; the token goes to this tab's session storage. */
export function loginPage(main: HTMLElement, loggedIn: () => void): void {
  let error = '';
  let busy = false;
  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    busy = true;
    error = '';
    draw();
    try {
      const r = await api<LoginResponse>('POST', '/auth/login', { user: String(form.get('user')), password: String(form.get('password')) });
      login.save(r.token, r.me);
      loggedIn();
    } catch (err) {
      error = (err as Error).message;
      busy = false;
      draw();
    }
  };
  const draw = () =>
    render(
      html`<section class="login">
        <h1>Log in to khd</h1>
        <form @submit=${submit}>
          <label for="user">User</label>
          <input id="user" name="user" autocomplete="username" required autofocus />
          <label for="password">Password</label>
          <input id="password" name="password" type="password" autocomplete="current-password" required />
          ${error ? html`<p class="error" role="alert">${error}</p>` : ''}
          <button type="submit" ?disabled=${busy}>${busy ? 'Logging in…' : 'Log in'}</button>
        </form>
      </section>`,
      main,
    );
  draw();
}
