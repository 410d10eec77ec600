import {
  LATEX_PALETTE,
  SVG_PALETTE,
  seriesColours,
  seriesRole,
} from '../../src/activities/artifacts/series-colours';

test.each([
  ['train/loss', 'train'],
  ['training_loss', 'train'],
  ['eval/accuracy', 'eval'],
  ['val_loss', 'eval'],
  ['loss-validation', 'eval'],
  ['test/acc', 'test'],
  ['lr', 'other'],
  ['trainer_steps', 'other'],
])('%s is on the %s side', (metric, role) => {
  expect(seriesRole(metric)).toBe(role);
});

test('colours follow the role, not the position; a second series of a role takes a spare', () => {
  expect(seriesColours(['eval/loss', 'train/loss'], SVG_PALETTE)).toEqual(['#f58518', '#4c78a8']);
  expect(seriesColours(['train/loss', 'eval/loss'], SVG_PALETTE)).toEqual(['#4c78a8', '#f58518']);
  expect(seriesColours(['loss', 'loss_smooth'], SVG_PALETTE)).toEqual(['#b279a2', '#e45756']);
  expect(seriesColours(['val/acc', 'train/acc'], LATEX_PALETTE)).toEqual(['red', 'blue']);
});

test('more series of one kind than there are colours: colours repeat, and it ends', () => {
  const many = ['train/loss', 'train_loss', 'training/loss', 'loss_train', 'train.loss', 'train-loss'];
  const colours = seriesColours(many, LATEX_PALETTE);
  expect(colours).toEqual(['blue', 'cyan', 'green', 'yellow', 'blue', 'blue']);
});
