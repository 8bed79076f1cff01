// State shared by the shell and the views.

import { History } from './chart.js';

// How often views and the overview charts re-read the API.
export const REFRESH_MS = 5000;

// The broker-wide history behind the overview charts: sampled on every
// tick whichever page is open, kept in sessionStorage across reloads.
export const overview = {
  history: new History('warren.history.overview'),
  last: null,
  error: null,
  reset() {
    sessionStorage.removeItem('warren.history.overview');
    this.history = new History('warren.history.overview');
    this.last = null;
  },
};
